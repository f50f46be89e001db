//! Gradient checkpointing: a block that keeps only its input in the forward pass and computes its
//! inside again in the backward (`torch.utils.checkpoint` with `use_reentrant=True`, which tch
//! lacks; the autograd function is the C++ shim's `csrc/checkpoint.cpp`).
//!
//! [`checkpoint`] runs the block once without a graph and saves its input. When the gradient
//! reaches it, libtorch calls back into the block ([`Pass::Recompute`]) under autograd, with the
//! CPU generator (and the input's CUDA generator) set to their states at the forward and the
//! forward's autocast settings, then back-propagates through that graph: the parameters'
//! gradients accumulate into their `.grad` as they would have without checkpointing, and the
//! input's goes on down the graph. The same operations on the same values: the same loss and
//! gradients, and the random stream after the step is the one without checkpointing.
//!
//! What the block changes besides its output it changes twice (once per pass): a block with such
//! a side effect (BatchNorm's running statistics in training) must skip it when told
//! [`Pass::Recompute`].
//!
//! Without a gradient to record (no-grad or inference mode, or an input that needs no gradient)
//! the block simply runs: evaluation never checkpoints. An input that needs no gradient feeding a
//! block whose parameters do would lose their gradients in a reentrant checkpoint (torch warns
//! of it); running plainly keeps them.
//!
//! No C++ exception crosses into Rust (the shim catches them all) and no panic crosses into C++:
//! the callback catches it. A panic in the forward is resumed in the caller, as if the block had
//! run plainly; one in the recompute becomes libtorch's error from `backward`, with its message.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};

use tch::Tensor;
use torch_sys::C_tensor;

use crate::{Error, Result};

type BlockFn = unsafe extern "C" fn(
    closure: *mut c_void,
    recompute: c_int,
    input: *mut C_tensor,
    output: *mut C_tensor,
    error: *mut c_void,
) -> c_int;
type DropFn = unsafe extern "C" fn(closure: *mut c_void);

unsafe extern "C" {
    fn clip_checkpoint_wanted(input: *const C_tensor) -> c_int;
    fn clip_checkpoint(
        input: *const C_tensor,
        call: BlockFn,
        closure: *mut c_void,
        drop: DropFn,
        out: *mut *mut C_tensor,
        error: *mut *mut c_char,
    ) -> c_int;
    fn clip_checkpoint_set_output(slot: *mut C_tensor, value: *const C_tensor) -> c_int;
    fn clip_checkpoint_set_error(error: *mut c_void, message: *const c_char, len: usize);
    fn clip_checkpoint_free_error(message: *mut c_char);
}

/// Which run of a checkpointed block this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The forward pass (without a graph when checkpointed), or a plain run.
    Forward,
    /// The backward's run under autograd: repeat the forward's computation, but none of its side
    /// effects.
    Recompute,
}

thread_local! {
    /// A panic of the block in the forward pass, resumed once the shim has returned.
    static FORWARD_PANIC: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
}

/// Runs `block` on `input` as a checkpointed block, or plainly when there is no gradient to
/// record (see the module docs). `block` must compute the same function of its input in both
/// passes; it owns what it reads (shallow clones of parameters), since the recompute runs
/// during `backward`, after the caller's frame is gone, and may run on libtorch's own autograd
/// thread (CUDA) while the thread that called `backward` waits.
///
/// # Errors
/// [`Error::Checkpoint`] if libtorch refused the autograd function.
///
/// # Panics
/// Whatever `block` panics with in the forward pass, as if it had been called directly.
pub fn checkpoint<F>(input: &Tensor, block: F) -> Result<Tensor>
where
    F: Fn(&Tensor, Pass) -> Tensor + Send + 'static,
{
    // SAFETY: a live tensor handle; the shim catches every C++ exception.
    if unsafe { clip_checkpoint_wanted(input.as_ptr()) } == 0 {
        return Ok(block(input, Pass::Forward));
    }
    let closure = Box::into_raw(Box::new(block)).cast::<c_void>();
    let (mut out, mut error) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: `closure` is a leaked Box<F> whose ownership the shim takes (freed by `drop_block::<F>`
    // exactly once); `call_block::<F>` reads it as an F. Out-pointers are valid locals.
    let status = unsafe {
        clip_checkpoint(
            input.as_ptr(),
            call_block::<F>,
            closure,
            drop_block::<F>,
            &mut out,
            &mut error,
        )
    };
    if let Some(payload) = FORWARD_PANIC.with(|p| p.borrow_mut().take()) {
        if !error.is_null() {
            // SAFETY: a malloc'd message from the shim, freed once.
            unsafe { clip_checkpoint_free_error(error) };
        }
        panic::resume_unwind(payload);
    }
    if status != 0 {
        let message = if error.is_null() {
            "out of memory".to_owned()
        } else {
            // SAFETY: a malloc'd NUL-terminated message, freed once below.
            let text = unsafe { CStr::from_ptr(error) }
                .to_string_lossy()
                .into_owned();
            unsafe { clip_checkpoint_free_error(error) };
            text
        };
        return Err(Error::Checkpoint(message));
    }
    // SAFETY: on success `out` is a new at::Tensor handle we own.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// The shim's callback: runs the block, catching any panic.
unsafe extern "C" fn call_block<F>(
    closure: *mut c_void,
    recompute: c_int,
    input: *mut C_tensor,
    output: *mut C_tensor,
    error: *mut c_void,
) -> c_int
where
    F: Fn(&Tensor, Pass) -> Tensor,
{
    let pass = if recompute == 0 {
        Pass::Forward
    } else {
        Pass::Recompute
    };
    let run = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the shim passes a new handle we own, and the closure it was given, alive
        // until `drop_block`; autograd nodes run one call at a time.
        let input = unsafe { Tensor::from_ptr(input) };
        let block = unsafe { &*closure.cast::<F>() };
        let result = block(&input, pass);
        // SAFETY: `output` is the shim's slot; `result` a live handle.
        unsafe { clip_checkpoint_set_output(output, result.as_ptr()) }
    }));
    let message = match run {
        Ok(0) => return 0,
        Ok(_) => "the result could not be stored".to_owned(),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            if pass == Pass::Forward {
                // The forward runs on the caller's thread, inside `checkpoint`, which resumes it.
                FORWARD_PANIC.with(|p| *p.borrow_mut() = Some(payload));
            }
            message
        }
    };
    // SAFETY: `error` is the shim's string; the message is valid for its length.
    unsafe { clip_checkpoint_set_error(error, message.as_ptr().cast(), message.len()) };
    1
}

/// The shim's destructor for the closure.
unsafe extern "C" fn drop_block<F>(closure: *mut c_void) {
    // SAFETY: the Box leaked by `checkpoint`, dropped once. Dropping tensors does not panic; if a
    // capture's destructor did, unwinding into C++ would be worse than leaking it.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        drop(unsafe { Box::from_raw(closure.cast::<F>()) })
    }));
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "the block panicked".to_owned(),
    }
}

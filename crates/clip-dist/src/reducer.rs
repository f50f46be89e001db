//! Gradient averaging over ranks in buckets ([`BucketPlan`]), each an in-place all-reduce of a span
//! of gradient storage. With overlap, hooks on the parameters' gradient accumulators (in the C++
//! shim) launch a bucket during the backward pass as soon as all its gradients are final, and
//! every bucket before it in the launch order has gone: Gloo's asynchronous work on the CPU,
//! NCCL's own stream on CUDA. Without overlap, every bucket is launched after the backward pass.
//! The same buckets in the same order with the same arithmetic: the same bits either way.

use std::ffi::c_int;
use std::sync::Arc;
use std::time::Instant;

use tch::Tensor;
use torch_sys::C_tensor;

use crate::{BucketPlan, Dist, Error, GradPlace, Group, Result, ffi};

/// How one step's reduction went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reduced {
    /// Seconds from the end of the backward pass ([`GradReducer::finish`] called) until the last
    /// bucket was reduced: the communication the backward pass did not hide.
    pub exposed_s: f64,
    /// Buckets launched during the backward pass.
    pub overlapped: usize,
}

/// Averages a fixed set of parameters' gradients over ranks, step after step (see
/// [`Dist::grad_reducer`]). With one process it does nothing.
pub struct GradReducer {
    /// Null with one process.
    raw: *mut ffi::RawReducer,
    group: Option<Arc<Group>>,
    overlap: bool,
    plan: Option<BucketPlan>,
}

// SAFETY: the shim's reducer guards its state with its own mutex; the handle is only freed on drop.
unsafe impl Send for GradReducer {}

impl Drop for GradReducer {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: created by clip_dist_reducer_new, freed once (its hooks are removed with it).
            unsafe { ffi::clip_dist_reducer_free(self.raw) }
        }
    }
}

impl Dist {
    /// A reducer that averages the gradients of `params` over ranks in buckets of at most
    /// `bucket_elements` elements ([`BucketPlan::new`]), overlapped with the backward pass or not.
    ///
    /// `params` are listed in the order their gradients are expected to become final in a
    /// backward pass (the reverse of the order the forward pass uses them is a good guess, as
    /// torch's DDP takes it); the order decides when buckets are launched, never what they hold.
    /// Every rank must pass the same parameters in the same order. A parameter without a
    /// gradient is given a zero one now. Gradients must be dense and contiguous, and stay where
    /// they are for the reducer's life (accumulated and zeroed in place, never replaced); a
    /// gradient found moved is an error of [`GradReducer::finish`].
    pub fn grad_reducer(&self, params: &[Tensor], bucket_elements: i64, overlap: bool) -> Result<GradReducer> {
        let Some(group) = &self.group else {
            return Ok(GradReducer { raw: std::ptr::null_mut(), group: None, overlap, plan: None });
        };
        let n = c_int::try_from(params.len()).map_err(|_| Error::Unsupported(format!("{} parameters are too many", params.len())))?;
        let pointers: Vec<*mut C_tensor> = params.iter().map(|t| t.as_ptr() as *mut C_tensor).collect();
        let (mut storage, mut offset, mut numel) = (vec![0i64; params.len()], vec![0i64; params.len()], vec![0i64; params.len()]);
        // SAFETY: `n` live tensor handles and three output arrays of `n` elements.
        let status =
            unsafe { ffi::clip_dist_grad_layout(pointers.as_ptr(), n, storage.as_mut_ptr(), offset.as_mut_ptr(), numel.as_mut_ptr()) };
        let unsupported = |m: String| Error::Unsupported(format!("gradient reducer: {m}"));
        ffi::check(status).map_err(unsupported)?;
        let places: Vec<GradPlace> =
            (0..params.len()).map(|i| GradPlace { storage: storage[i] as usize, offset: offset[i], numel: numel[i] }).collect();
        let plan = BucketPlan::new(&places, bucket_elements).map_err(unsupported)?;
        let spans: Vec<i64> = plan.buckets.iter().flat_map(|b| [b.anchor as i64, b.offset, b.len]).collect();
        let (mut member_start, mut member_params) = (vec![0i64], Vec::new());
        for bucket in &plan.buckets {
            member_params.extend(bucket.members.iter().map(|&m| m as i64));
            member_start.push(member_params.len() as i64);
        }
        let order: Vec<i64> = plan.order.iter().map(|&b| b as i64).collect();
        let mut raw = std::ptr::null_mut();
        // SAFETY: live group and tensor handles; the arrays are as long as the shim reads
        // (3 per bucket, buckets + 1, the members, one per bucket); `raw` is a local.
        let status = unsafe {
            ffi::clip_dist_reducer_new(
                group.raw,
                pointers.as_ptr(),
                n,
                spans.as_ptr(),
                plan.buckets.len() as c_int,
                member_start.as_ptr(),
                member_params.as_ptr(),
                order.as_ptr(),
                c_int::from(overlap),
                &mut raw,
            )
        };
        ffi::check(status).map_err(unsupported)?;
        Ok(GradReducer { raw, group: Some(Arc::clone(group)), overlap, plan: Some(plan) })
    }
}

impl GradReducer {
    /// The buckets and their launch order; `None` with one process.
    pub fn plan(&self) -> Option<&BucketPlan> {
        self.plan.as_ref()
    }

    /// Whether buckets are reduced during the backward pass.
    pub fn overlaps(&self) -> bool {
        self.overlap
    }

    /// Announces that the next backward pass completes this step's gradients (the last of a
    /// step's accumulated passes): with overlap, buckets are launched during it as they fill.
    /// Without overlap, or with one process, nothing.
    pub fn arm(&self) {
        if self.overlap && !self.raw.is_null() {
            // SAFETY: live handle.
            unsafe { ffi::clip_dist_reducer_arm(self.raw) }
        }
    }

    /// After the step's last backward pass: launches the buckets not launched yet, in the launch
    /// order, waits for all of them (each within the collective timeout) and divides by the
    /// number of ranks. A failed collective names the ranks that died.
    pub fn finish(&self) -> Result<Reduced> {
        let Some(group) = &self.group else { return Ok(Reduced { exposed_s: 0.0, overlapped: 0 }) };
        let start = Instant::now();
        let mut early: c_int = 0;
        // SAFETY: live handle, local out-pointer.
        let status = unsafe { ffi::clip_dist_reducer_finish(self.raw, &mut early) };
        ffi::check(status).map_err(|m| group.failure("gradient all_reduce", m))?;
        Ok(Reduced { exposed_s: start.elapsed().as_secs_f64(), overlapped: early as usize })
    }
}

//! Reading the tensors of TorchScript archives (OpenAI's released `.pt` files) without Python:
//! parameters and buffers, by their module paths (`visual.bn1.running_mean`, …).

use std::ffi::{CStr, CString, c_char};
use std::path::Path;

use tch::Tensor;

use crate::{Error, Result};

#[repr(C)]
struct RawNamedTensors {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn clip_jit_read(path: *const c_char, out: *mut *mut RawNamedTensors) -> *mut c_char;
    fn clip_jit_len(t: *const RawNamedTensors) -> usize;
    fn clip_jit_name(t: *const RawNamedTensors, i: usize) -> *const c_char;
    fn clip_jit_tensor(t: *const RawNamedTensors, i: usize) -> *mut torch_sys::C_tensor;
    fn clip_jit_free(t: *mut RawNamedTensors);
    fn clip_jit_free_error(message: *mut c_char);
}

/// Every parameter and buffer of a TorchScript archive, on the CPU, in the archive's dtypes.
pub fn read_torchscript(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let c_path = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"),
    })?;
    let mut raw = std::ptr::null_mut();
    // SAFETY: valid C string and out-pointer; the shim catches every C++ exception.
    let message = unsafe { clip_jit_read(c_path.as_ptr(), &mut raw) };
    if !message.is_null() {
        // SAFETY: a malloc'd NUL-terminated message, freed once below.
        let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
        unsafe { clip_jit_free_error(message) };
        return Err(Error::TorchScript { path: path.to_path_buf(), message: text });
    }
    // SAFETY: `raw` is a live result until clip_jit_free; each tensor handle is a new at::Tensor
    // that `Tensor::from_ptr` takes ownership of.
    let tensors = unsafe {
        let list = (0..clip_jit_len(raw))
            .map(|i| {
                let name = CStr::from_ptr(clip_jit_name(raw, i)).to_string_lossy().into_owned();
                (name, Tensor::from_ptr(clip_jit_tensor(raw, i)))
            })
            .collect();
        clip_jit_free(raw);
        list
    };
    Ok(tensors)
}

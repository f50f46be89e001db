//! Numeric precision and mixed-precision (autocast) regions.

use std::fmt;
use std::os::raw::c_int;
use std::str::FromStr;

use tch::{Device, Kind};

use crate::{Error, Result};

unsafe extern "C" {
    fn clip_autocast_enter(cuda: c_int, dtype: c_int, prev_enabled: *mut c_int, prev_dtype: *mut c_int) -> c_int;
    fn clip_autocast_exit(cuda: c_int, prev_enabled: c_int, prev_dtype: c_int) -> c_int;
}

/// How a model computes: plain fp32, or fp32 weights with autocast to a 16-bit type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Everything in fp32.
    #[default]
    Fp32,
    /// Autocast to bfloat16: fp32's range, so no loss scaling is needed.
    Bf16,
    /// Autocast to float16.
    Fp16,
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Self::Fp32),
            "bf16" | "bfloat16" | "amp_bf16" => Ok(Self::Bf16),
            "fp16" | "float16" | "amp" => Ok(Self::Fp16),
            _ => Err(Error::InvalidPrecision(s.to_owned())),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
        })
    }
}

impl Precision {
    /// The dtype that autocast computes eligible ops in; `None` for fp32.
    pub fn autocast_kind(self) -> Option<Kind> {
        match self {
            Self::Fp32 => None,
            Self::Bf16 => Some(Kind::BFloat16),
            Self::Fp16 => Some(Kind::Half),
        }
    }
}

/// Restores the autocast state of one device type when dropped, so a panic inside the region
/// cannot leave autocast switched on for the rest of the process.
struct AutocastGuard {
    cuda: c_int,
    prev_enabled: c_int,
    prev_dtype: c_int,
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // SAFETY: plain values; the shim catches every C++ exception.
        // A failure here cannot be reported from drop; the entry call already proved the API works.
        let _ = unsafe { clip_autocast_exit(self.cuda, self.prev_enabled, self.prev_dtype) };
    }
}

/// Runs `f` with autocast on `device`'s type at `precision` (matmuls, convolutions and attention in
/// 16 bits; reductions and losses stay fp32, as in `torch.autocast`). fp32 runs `f` unchanged.
pub fn autocast<T>(device: Device, precision: Precision, f: impl FnOnce() -> T) -> Result<T> {
    let dtype = match precision {
        Precision::Fp32 => return Ok(f()),
        Precision::Bf16 => 0,
        Precision::Fp16 => 1,
    };
    let cuda = c_int::from(device.is_cuda());
    let (mut prev_enabled, mut prev_dtype) = (0, 0);
    // SAFETY: the out-pointers are valid locals; the shim catches every C++ exception.
    let status = unsafe { clip_autocast_enter(cuda, dtype, &mut prev_enabled, &mut prev_dtype) };
    if status != 0 {
        return Err(Error::Autocast("enable"));
    }
    let _guard = AutocastGuard { cuda, prev_enabled, prev_dtype };
    Ok(f())
}

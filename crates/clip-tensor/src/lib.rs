//! tch glue shared by every clip-rs crate that touches tensors.
//!
//! - [`device`]: `auto|cpu|cuda|cuda:N` as users write it, failing loudly when CUDA is asked for but
//!   absent (tch's `cuda_if_available` silently falls back to CPU).
//! - [`precision`]: fp32/bf16/fp16 and an autocast region that sets the low-precision dtype per device
//!   (tch's own `autocast` is CUDA-only and fixed to fp16).
//! - [`checkpoint`]: gradient checkpointing (`torch.utils.checkpoint`, reentrant) for blocks
//!   written in Rust: kept input, recomputed inside, through a C++ autograd function.
//! - [`seed`]: one call that seeds libtorch's CPU and CUDA generators and the host RNG.
//! - [`safetensors`]: strict loading (missing, unexpected and mis-shaped keys reported together) and
//!   saving through [`atomic`], which never leaves a half-written file where a good one was.
//!
//! - [`torchscript`]: the parameters and buffers of TorchScript archives (OpenAI's `.pt` files).
//! - [`torch_save`]: `torch.save` files (zip and legacy) read without Python: [`pickle`] is a
//!   restricted unpickler following torch's `weights_only` allow-list, a pure data interpreter that
//!   never runs anything and refuses every other global by name; tensors are rebuilt from the
//!   storages with their offsets and strides, every size checked against the file.
//!
//! Nothing here prints; errors are values of [`Error`].
//!
//! # Example
//! ```
//! use clip_tensor::device::DeviceSpec;
//!
//! let device: DeviceSpec = "cpu".parse()?;
//! assert_eq!(device.resolve()?, tch::Device::Cpu);
//! assert!("cuda:x".parse::<DeviceSpec>().is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod atomic;
pub mod checkpoint;
pub mod device;
mod error;
pub mod pickle;
pub mod precision;
pub mod safetensors;
pub mod seed;
pub mod torch_save;
pub mod torchscript;

pub use error::{Error, Result};

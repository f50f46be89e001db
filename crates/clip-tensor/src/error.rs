//! The crate's error type.

use std::path::PathBuf;

use crate::safetensors::KeyReport;

/// Errors from device selection, weight I/O and the libtorch shim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A device string that is not `auto`, `cpu`, `cuda` or `cuda:N`.
    #[error("invalid device {0:?}: expected auto, cpu, cuda or cuda:N")]
    InvalidDevice(String),
    /// CUDA was asked for explicitly but libtorch sees no usable GPU.
    #[error("device {0} requested, but CUDA is not available (no GPU, no driver, or libtorch_cuda not loaded)")]
    CudaUnavailable(String),
    /// A CUDA ordinal beyond the visible devices.
    #[error("device cuda:{index} requested, but only {count} CUDA device(s) are visible")]
    NoSuchCudaDevice {
        /// The ordinal asked for.
        index: usize,
        /// How many devices libtorch sees.
        count: usize,
    },
    /// A precision string that is not `fp32`, `bf16` or `fp16`.
    #[error("invalid precision {0:?}: expected fp32, bf16 or fp16")]
    InvalidPrecision(String),
    /// The autocast shim reported a libtorch exception.
    #[error("libtorch refused to {0} autocast")]
    Autocast(&'static str),
    /// The gradient-checkpointing shim reported a libtorch exception.
    #[error("gradient checkpointing: {0}")]
    Checkpoint(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid safetensors (truncated, bad header, overlapping offsets…).
    #[error("{}: not a valid safetensors file: {source}", path.display())]
    Safetensors {
        /// The file concerned.
        path: PathBuf,
        /// The parser's complaint.
        source: ::safetensors::SafeTensorError,
    },
    /// A tensor stored with a dtype libtorch has no equivalent for.
    #[error("{}: tensor {name:?} has unsupported dtype {dtype}", path.display())]
    UnsupportedDtype {
        /// The file concerned.
        path: PathBuf,
        /// The tensor's key.
        name: String,
        /// The stored dtype.
        dtype: String,
    },
    /// A file libtorch could not load as a TorchScript archive.
    #[error("{}: not a loadable TorchScript archive: {message}", path.display())]
    TorchScript {
        /// The file concerned.
        path: PathBuf,
        /// libtorch's message.
        message: String,
    },
    /// A pickle the restricted unpickler refused or could not read: a global outside torch's
    /// `weights_only` allow-list (named in the message), a truncated or malformed stream…
    #[error("unpickling stopped at byte {offset}: {message}")]
    Pickle {
        /// Where the offending opcode starts.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A file that is not a readable torch.save checkpoint.
    #[error("{}: not a readable torch.save file: {message}", path.display())]
    TorchSave {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong (an unpickling error included).
        message: String,
    },
    /// Weights whose keys or shapes do not match the model; every problem is listed.
    #[error("{}: weights do not fit the model: {report}", path.display())]
    Keys {
        /// The weights file.
        path: PathBuf,
        /// Missing, unexpected and mis-shaped keys, all of them.
        report: KeyReport,
    },
    /// An error raised inside libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

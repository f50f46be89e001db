//! Device selection as users write it on the command line and in configs.

use std::fmt;
use std::str::FromStr;

use tch::{Cuda, Device};

use crate::{Error, Result};

/// `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The first CUDA device if there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// A CUDA device; `None` means device 0.
    Cuda(Option<usize>),
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(None)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|index| index.parse().ok())
                .map(|index| Self::Cuda(Some(index)))
                .ok_or_else(|| Error::InvalidDevice(s.to_owned())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(None) => f.write_str("cuda"),
            Self::Cuda(Some(index)) => write!(f, "cuda:{index}"),
        }
    }
}

impl DeviceSpec {
    /// The concrete device. An explicit CUDA request without a usable GPU is an error, never a
    /// silent fall back to the CPU.
    pub fn resolve(self) -> Result<Device> {
        let count = if Cuda::is_available() { Cuda::device_count().max(0) as usize } else { 0 };
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto if count > 0 => Ok(Device::Cuda(0)),
            Self::Auto => Ok(Device::Cpu),
            Self::Cuda(_) if count == 0 => Err(Error::CudaUnavailable(self.to_string())),
            Self::Cuda(index) => {
                let index = index.unwrap_or(0);
                if index < count {
                    Ok(Device::Cuda(index))
                } else {
                    Err(Error::NoSuchCudaDevice { index, count })
                }
            }
        }
    }
}

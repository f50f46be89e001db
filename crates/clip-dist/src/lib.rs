//! Data-parallel collectives on libtorch's own c10d engine: rendezvous through `TCPStore`,
//! `ProcessGroupGloo` on CPU, `ProcessGroupNCCL` on CUDA, reached through a small C++ shim
//! (`csrc/dist.cpp`) compiled against the same libtorch as tch. No home-made networking.
//!
//! [`Dist`] is what callers hold: with one process it does nothing and costs nothing; with many it
//! all-reduces, all-gathers (with or without gradient), broadcasts and waits at barriers, each
//! bounded by the configured timeout. A failed collective reports which ranks stopped answering.
//! A [`GradReducer`] averages a model's gradients in buckets, during the backward pass
//! (overlapped) or after it, the two giving the same bits.
//!
//! # Example
//! ```
//! use clip_dist::{Dist, ReduceOp};
//! use tch::Tensor;
//!
//! // One process (no launch environment): every collective is the identity.
//! let dist = Dist::single();
//! let mut t = Tensor::from_slice(&[1.0f32, 2.0]);
//! dist.all_reduce_(&mut t, ReduceOp::Sum)?;
//! assert_eq!(Vec::<f32>::try_from(&t)?, [1.0, 2.0]);
//! assert_eq!(dist.all_gather(&t)?.size(), [2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buckets;
mod config;
mod ffi;
mod reducer;
mod store;

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use tch::{Device, Tensor};

pub use buckets::{Bucket, BucketPlan, GradPlace};
pub use config::{DEFAULT_TIMEOUT, DistConfig};
pub use reducer::{GradReducer, Reduced};
pub use store::Store;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The launch environment is missing or inconsistent.
    #[error("distributed environment: {var}: {message}")]
    Env {
        /// The variable at fault.
        var: String,
        /// What is wrong with it.
        message: String,
    },
    /// The rendezvous store could not be hosted or reached.
    #[error("rendezvous at {addr}:{port} failed: {message}")]
    Rendezvous {
        /// Host.
        addr: String,
        /// Port.
        port: u16,
        /// c10d's message.
        message: String,
    },
    /// A process group could not be formed.
    #[error("rank {rank} of {world_size}: creating the {backend} process group failed: {message}")]
    Group {
        /// This rank.
        rank: usize,
        /// Ranks in all.
        world_size: usize,
        /// "gloo" or "nccl".
        backend: &'static str,
        /// c10d's message.
        message: String,
    },
    /// A collective failed or timed out.
    #[error("rank {rank} of {world_size}: {op} failed: {message}{}", unresponsive_note(.unresponsive))]
    Collective {
        /// The collective.
        op: &'static str,
        /// This rank.
        rank: usize,
        /// Ranks in all.
        world_size: usize,
        /// c10d's message.
        message: String,
        /// Ranks whose heartbeat stopped (dead); `None` if the store was unreachable too.
        unresponsive: Option<Vec<usize>>,
    },
    /// Ranks passed tensors that cannot be gathered together.
    #[error("rank {rank}: {op}: ranks disagree on the tensor: {}", describe_layouts(.layouts))]
    Mismatch {
        /// The collective.
        op: &'static str,
        /// This rank.
        rank: usize,
        /// Each rank's (dtype code, shape).
        layouts: Vec<(i64, Vec<i64>)>,
    },
    /// A tensor that cannot go through the collective (too many dimensions, wrong device).
    #[error("{0}")]
    Unsupported(String),
    /// An error raised inside libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

fn unresponsive_note(ranks: &Option<Vec<usize>>) -> String {
    match ranks {
        None => "; the rendezvous store is unreachable too (its host, rank 0 or the launcher, may have died)".into(),
        Some(r) if r.is_empty() => String::new(),
        Some(r) => format!("; ranks whose heartbeat stopped (dead): {r:?}"),
    }
}

fn describe_layouts(layouts: &[(i64, Vec<i64>)]) -> String {
    let parts: Vec<String> =
        layouts.iter().enumerate().map(|(rank, (kind, shape))| format!("rank {rank}: dtype #{kind} shape {shape:?}")).collect();
    parts.join(", ")
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The collective engine for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CPU tensors, over TCP.
    Gloo,
    /// CUDA tensors.
    Nccl,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Gloo => "gloo",
            Self::Nccl => "nccl",
        }
    }

    /// The backend for tensors on `device`.
    pub fn for_device(device: Device) -> Self {
        if device.is_cuda() { Self::Nccl } else { Self::Gloo }
    }
}

/// Whether this build can use NCCL (libtorch with CUDA and the headers at build time).
pub fn has_nccl() -> bool {
    // SAFETY: a constant query.
    unsafe { ffi::clip_dist_has_nccl() != 0 }
}

/// Reductions for [`Dist::all_reduce_`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum over ranks.
    Sum,
    /// Mean over ranks (a sum, then a division: Gloo has no native average).
    Avg,
    /// Maximum over ranks.
    Max,
    /// Minimum over ranks.
    Min,
}

struct Group {
    raw: *mut ffi::RawGroup,
    store: Store,
    _heartbeat: store::Heartbeat,
    rank: usize,
    world_size: usize,
}

impl Group {
    /// The error of a failed collective, naming the ranks whose heartbeat stopped.
    fn failure(&self, op: &'static str, message: String) -> Error {
        let unresponsive = self.store.dead_ranks(self.rank, self.world_size);
        Error::Collective { op, rank: self.rank, world_size: self.world_size, message, unresponsive }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: created by clip_dist_group, freed once.
        unsafe { ffi::clip_dist_group_free(self.raw) }
    }
}

// SAFETY: c10d process groups and stores are thread-safe for issuing collectives and store
// operations; the handle is only freed on drop.
unsafe impl Send for Group {}
// SAFETY: as for Send: every use through a shared reference is a thread-safe c10d call.
unsafe impl Sync for Group {}

/// A rank's handle on the job: rank, size, and the collectives.
pub struct Dist {
    /// This process's rank.
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
    /// Rank on this machine.
    pub local_rank: usize,
    group: Option<Arc<Group>>,
}

/// Most dimensions a gathered tensor may have (the layout check sends them in a fixed-size row).
const MAX_DIMS: usize = 8;

impl Dist {
    /// One process: every collective is the identity.
    pub fn single() -> Self {
        Self { rank: 0, world_size: 1, local_rank: 0, group: None }
    }

    /// From the environment (`torchrun`, `clip launch`, SLURM), or [`Dist::single`] without one.
    pub fn from_env(backend: Backend) -> Result<Self> {
        match DistConfig::from_env()? {
            Some(config) => Self::init(&config, backend),
            None => Ok(Self::single()),
        }
    }

    /// Joins the job described by `config`: rendezvous, then a process group. Fails within the
    /// configured timeout if the store cannot be reached or hosted.
    pub fn init(config: &DistConfig, backend: Backend) -> Result<Self> {
        if backend == Backend::Nccl && !has_nccl() {
            return Err(Error::Group {
                rank: config.rank,
                world_size: config.world_size,
                backend: backend.name(),
                message: "this build has no NCCL support".into(),
            });
        }
        let store = Store::connect(config)?;
        let is_loopback = config.master_addr == "localhost" || config.master_addr.starts_with("127.");
        // On one machine, keep Gloo on loopback: the hostname may resolve to another interface.
        let gloo_host = CString::new(if is_loopback { "127.0.0.1" } else { "" }).expect("no NUL");
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid store handle and C strings; out-pointer is a local.
        let status = unsafe {
            ffi::clip_dist_group(
                store.raw(),
                config.rank as i32,
                config.world_size as i32,
                i32::from(backend == Backend::Nccl),
                gloo_host.as_ptr(),
                millis(config.timeout),
                &mut raw,
            )
        };
        ffi::check(status).map_err(|message| Error::Group {
            rank: config.rank,
            world_size: config.world_size,
            backend: backend.name(),
            message,
        })?;
        let heartbeat = store::Heartbeat::start(config)?;
        let group = Group { raw, store, _heartbeat: heartbeat, rank: config.rank, world_size: config.world_size };
        Ok(Self { rank: config.rank, world_size: config.world_size, local_rank: config.local_rank, group: Some(Arc::new(group)) })
    }

    /// True with more than one rank.
    pub fn is_distributed(&self) -> bool {
        self.group.is_some()
    }

    /// Reduces `tensor` over all ranks, in place.
    pub fn all_reduce_(&self, tensor: &mut Tensor, op: ReduceOp) -> Result<()> {
        let Some(group) = &self.group else { return Ok(()) };
        let code = match op {
            ReduceOp::Sum | ReduceOp::Avg => 0,
            ReduceOp::Max => 1,
            ReduceOp::Min => 2,
        };
        // SAFETY: live group and tensor handles.
        let status = unsafe { ffi::clip_dist_allreduce(group.raw, tensor.as_mut_ptr(), code) };
        ffi::check(status).map_err(|m| group.failure("all_reduce", m))?;
        if op == ReduceOp::Avg {
            let _ = tensor.f_div_scalar_(self.world_size as f64)?;
        }
        Ok(())
    }

    /// Every rank's `tensor` (same dtype and shape on all ranks), concatenated along dim 0 in rank
    /// order. No gradient flows back through it.
    pub fn all_gather(&self, tensor: &Tensor) -> Result<Tensor> {
        self.gather(tensor, false)
    }

    /// [`Dist::all_gather`] that carries gradient: in backward, each rank receives the sum over all
    /// ranks of the gradients for its own block (what a contrastive loss over a global batch needs).
    pub fn all_gather_with_grad(&self, tensor: &Tensor) -> Result<Tensor> {
        self.gather(tensor, true)
    }

    fn gather(&self, tensor: &Tensor, with_grad: bool) -> Result<Tensor> {
        let Some(group) = &self.group else { return Ok(tensor.shallow_clone()) };
        let op = if with_grad { "all_gather_with_grad" } else { "all_gather" };
        self.check_layouts(group, op, tensor)?;
        self.gather_raw(group, op, tensor, with_grad)
    }

    /// The shim's all-gather, its error turned into ours.
    fn gather_raw(&self, group: &Group, op: &'static str, tensor: &Tensor, with_grad: bool) -> Result<Tensor> {
        let mut out = std::ptr::null_mut();
        // SAFETY: live handles; on success `out` is a new at::Tensor we take ownership of.
        let status = unsafe {
            if with_grad {
                ffi::clip_dist_allgather_with_grad(group.raw, tensor.as_ptr() as *mut _, &mut out)
            } else {
                ffi::clip_dist_allgather(group.raw, tensor.as_ptr() as *mut _, &mut out)
            }
        };
        ffi::check(status).map_err(|m| group.failure(op, m))?;
        // SAFETY: `out` was allocated by the shim as an at::Tensor and is owned by us now.
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    /// Gathers every rank's dtype and shape first, so a mismatch is a clear error rather than a
    /// failure (or a hang) deep inside the backend.
    fn check_layouts(&self, group: &Group, op: &'static str, tensor: &Tensor) -> Result<()> {
        let shape = tensor.size();
        if shape.len() > MAX_DIMS || shape.is_empty() {
            return Err(Error::Unsupported(format!("{op}: tensors need 1 to {MAX_DIMS} dimensions, got {shape:?}")));
        }
        let mut row = vec![-1i64; MAX_DIMS + 2];
        row[0] = tensor.kind() as i64;
        row[1] = shape.len() as i64;
        row[2..2 + shape.len()].copy_from_slice(&shape);
        let local = Tensor::from_slice(&row).to_device(tensor.device());
        let all = self.gather_raw(group, op, &local, false)?.to_device(Device::Cpu);
        let values = Vec::<i64>::try_from(&all.view([-1]))?;
        let layouts: Vec<(i64, Vec<i64>)> = values
            .chunks(MAX_DIMS + 2)
            .map(|r| (r[0], r[2..2 + r[1].clamp(0, MAX_DIMS as i64) as usize].to_vec()))
            .collect();
        if layouts.iter().any(|l| l != &layouts[0]) {
            return Err(Error::Mismatch { op, rank: self.rank, layouts });
        }
        Ok(())
    }

    /// Copies `root`'s `tensor` to every rank, in place.
    pub fn broadcast_(&self, tensor: &mut Tensor, root: usize) -> Result<()> {
        let Some(group) = &self.group else { return Ok(()) };
        // SAFETY: live handles.
        let status = unsafe { ffi::clip_dist_broadcast(group.raw, tensor.as_mut_ptr(), root as i32) };
        ffi::check(status).map_err(|m| group.failure("broadcast", m))
    }

    /// Waits until every rank arrives.
    pub fn barrier(&self) -> Result<()> {
        let Some(group) = &self.group else { return Ok(()) };
        // SAFETY: live handle.
        let status = unsafe { ffi::clip_dist_barrier(group.raw) };
        ffi::check(status).map_err(|m| group.failure("barrier", m))
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

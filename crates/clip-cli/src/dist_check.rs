//! `clip dist-check`: proves a job's collectives work end to end (rendezvous, all-reduce,
//! all-gather with gradient, barrier) under `clip launch`, `torchrun` or SLURM, before a long run
//! depends on them. Every rank checks the results; rank 0 reports. Run alone, it forms a job of
//! one rank on loopback, so the engine (NCCL with `--device cuda`) is exercised all the same.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clip_dist::{Backend, Dist, DistConfig, ReduceOp};
use clip_tensor::device::DeviceSpec;
use tch::{Device, Kind, Tensor};

/// What `clip dist-check` runs.
pub(crate) struct Options {
    pub(crate) device: DeviceSpec,
    pub(crate) rounds: usize,
    pub(crate) interval: Duration,
    pub(crate) elements: i64,
}

/// A job of one rank, with its store on a free loopback port.
fn alone() -> Result<DistConfig> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    Ok(DistConfig {
        rank: 0,
        world_size: 1,
        local_rank: 0,
        master_addr: "127.0.0.1".into(),
        master_port: port,
        agent_store: false,
        restart_count: 0,
        timeout: clip_dist::DEFAULT_TIMEOUT,
    })
}

pub(crate) fn run(options: &Options) -> Result<()> {
    let requested = options.device.resolve()?;
    let config = match DistConfig::from_env()? {
        Some(config) => config,
        None => alone()?,
    };
    let dist = Dist::init(&config, Backend::for_device(requested)).context("joining the job")?;
    // One GPU per local rank.
    let device = match requested {
        Device::Cuda(_) => Device::Cuda(dist.local_rank),
        other => other,
    };
    let backend = if device.is_cuda() { "nccl" } else { "gloo" };
    let (rank, world) = (dist.rank as f64, dist.world_size as f64);
    let start = Instant::now();
    for round in 0..options.rounds {
        let round_start = Instant::now();
        let mut t = Tensor::full([options.elements], rank + 1.0, (Kind::Float, device));
        dist.all_reduce_(&mut t, ReduceOp::Sum)?;
        let expected = world * (world + 1.0) / 2.0;
        let got = f64::try_from(t.mean(Kind::Float))?;
        ensure!((got - expected).abs() < 1e-3, "round {round}: all_reduce gave {got}, expected {expected}");

        let local = Tensor::full([2, 3], rank, (Kind::Float, device)).set_requires_grad(true);
        let gathered = dist.all_gather_with_grad(&local)?;
        ensure!(gathered.size() == [2 * dist.world_size as i64, 3], "round {round}: all_gather shape {:?}", gathered.size());
        // d/d(local) of sum(gathered * (block index + 1)), summed over ranks: W * (rank + 1).
        let weights = Tensor::arange(dist.world_size as i64, (Kind::Float, device)).repeat_interleave_self_int(2, 0, None) + 1.0;
        (gathered * weights.unsqueeze(1)).sum(Kind::Float).backward();
        let grad = f64::try_from(local.grad().mean(Kind::Float))?;
        ensure!((grad - world * (rank + 1.0)).abs() < 1e-3, "round {round}: all_gather gradient {grad}, expected {}", world * (rank + 1.0));
        dist.barrier()?;
        if dist.rank == 0 {
            eprintln!(
                "dist-check: round {}/{} ok in {:.1} ms",
                round + 1,
                options.rounds,
                round_start.elapsed().as_secs_f64() * 1e3
            );
        }
        if round + 1 < options.rounds {
            std::thread::sleep(options.interval);
        }
    }
    if dist.rank == 0 {
        println!(
            "dist-check: {} rank(s), backend {backend}, {} round(s) ok in {:.2} s",
            dist.world_size,
            options.rounds,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

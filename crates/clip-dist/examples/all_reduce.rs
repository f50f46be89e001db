//! All-reduce across 2 local ranks on loopback with Gloo. Run without the launch environment, the
//! program is the launcher: it picks a free port and starts two copies of itself with torchrun's
//! variables (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`); each rank contributes its own
//! tensor, sums and averages it with the other, and gathers both. Under `torchrun` or `clip
//! launch` the same program is simply a rank.
//!
//!     cargo run --release -p clip-dist --example all_reduce
#![allow(clippy::print_stdout)] // an example's output is its result

use std::process::Command;

use clip_dist::{Backend, Dist, ReduceOp};
use tch::{Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("WORLD_SIZE").is_none() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let ranks: Vec<_> = (0..2)
            .map(|rank| {
                Command::new(std::env::current_exe()?)
                    .envs([("RANK", rank.to_string()), ("LOCAL_RANK", rank.to_string()), ("WORLD_SIZE", "2".into())])
                    .envs([("MASTER_ADDR", "127.0.0.1".to_owned()), ("MASTER_PORT", port.to_string()), ("TORCH_CPP_LOG_LEVEL", "ERROR".into())])
                    .spawn()
            })
            .collect::<Result<_, _>>()?;
        for mut rank in ranks {
            let status = rank.wait()?;
            if !status.success() {
                return Err(format!("a rank failed: {status}").into());
            }
        }
        return Ok(());
    }
    let dist = Dist::from_env(Backend::Gloo)?;
    let mine = Tensor::from_slice(&[1.0f32, 2.0, 3.0]) * (dist.rank + 1) as f64; // rank 0: 1 2 3, rank 1: 2 4 6
    let mut sum = mine.copy();
    dist.all_reduce_(&mut sum, ReduceOp::Sum)?;
    let mut mean = mine.copy();
    dist.all_reduce_(&mut mean, ReduceOp::Avg)?;
    let gathered = dist.all_gather(&mine.unsqueeze(0))?; // [world_size, 3], in rank order
    let row = |t: &Tensor| Vec::<f32>::try_from(t.to_kind(Kind::Float).view([-1])).unwrap_or_default();
    dist.barrier()?;
    println!("rank {} of {}: mine {:?}  sum {:?}  mean {:?}  gathered {:?}", dist.rank, dist.world_size, row(&mine), row(&sum), row(&mean), row(&gathered));
    Ok(())
}

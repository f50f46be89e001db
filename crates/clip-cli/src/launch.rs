//! `clip launch --nproc N -- <clip subcommand…>`: N ranks on this machine, with the environment
//! `torchrun` gives (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and the rendezvous
//! store hosted here, as torchrun's agent does, so that any rank's death can be named. If a rank
//! fails, the others are stopped and the launch fails.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clip_dist::Store;

/// Time ranks get to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

pub(crate) fn run(nproc: usize, master_port: Option<u16>, args: &[String]) -> Result<()> {
    if nproc == 0 {
        bail!("--nproc must be at least 1");
    }
    if args.is_empty() {
        bail!("nothing to launch: give a clip subcommand after --");
    }
    let port = match master_port {
        Some(port) => port,
        None => TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
    };
    let timeout = clip_dist::DEFAULT_TIMEOUT;
    let _store = Store::host(port, nproc, timeout).with_context(|| format!("hosting the rendezvous store on port {port}"))?;
    let exe = std::env::current_exe().context("locating the clip binary")?;
    let mut children: Vec<Option<Child>> = Vec::with_capacity(nproc);
    for rank in 0..nproc {
        let child = Command::new(&exe)
            .args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("TORCHELASTIC_USE_AGENT_STORE", "True")
            .env("TORCHELASTIC_RESTART_COUNT", "0")
            .spawn()
            .with_context(|| format!("starting rank {rank}"));
        match child {
            Ok(child) => children.push(Some(child)),
            Err(err) => {
                stop(&mut children);
                return Err(err);
            }
        }
    }
    eprintln!("clip launch: {nproc} rank(s), rendezvous 127.0.0.1:{port}");
    loop {
        let mut running = 0;
        for rank in 0..nproc {
            let Some(child) = children[rank].as_mut() else { continue };
            match child.try_wait()? {
                None => running += 1,
                Some(status) if status.success() => children[rank] = None,
                Some(status) => {
                    children[rank] = None;
                    let how = match status.code() {
                        Some(code) => format!("exit code {code}"),
                        None => format!("signal {}", std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)),
                    };
                    let survivors = stop(&mut children);
                    bail!("rank {rank} failed ({how}); stopped the other {survivors} running rank(s)");
                }
            }
        }
        if running == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM to every running rank, SIGKILL to those still there after [`GRACE`]; returns how many
/// were running.
fn stop(children: &mut [Option<Child>]) -> usize {
    let running: Vec<&mut Child> = children.iter_mut().filter_map(Option::as_mut).collect();
    let count = running.len();
    for child in &running {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    }
    let deadline = Instant::now() + GRACE;
    for child in running {
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    count
}

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn clip() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip"))
}

#[test]
fn launch_runs_a_multi_rank_dist_check() {
    let output = clip().args(["launch", "--nproc", "3", "--", "dist-check", "--rounds", "2", "--elements", "1000"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("dist-check: 3 rank(s), backend gloo, 2 round(s) ok"), "{stdout}");
}

/// The pids of `parent`'s children with their RANK, from /proc.
fn ranks_of_children(parent: u32) -> Vec<(u32, usize)> {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let rank = environ.split(|&b| b == 0).find_map(|var| var.strip_prefix(b"RANK="))?;
            Some((pid.parse().ok()?, std::str::from_utf8(rank).ok()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn launch_stops_the_other_ranks_when_one_dies() {
    let mut launcher = clip()
        .args(["launch", "--nproc", "3", "--", "dist-check", "--rounds", "100000", "--interval-ms", "50", "--elements", "16"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let victim = loop {
        let ranks = ranks_of_children(launcher.id());
        if ranks.len() == 3 && start.elapsed() > Duration::from_secs(2) {
            break ranks.into_iter().find(|&(_, rank)| rank == 1).unwrap().0;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "ranks did not start");
        std::thread::sleep(Duration::from_millis(100));
    };
    // SAFETY: kill(2) on a process this test started (a child of its child).
    unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
    let killed_at = Instant::now();
    let status = loop {
        if let Some(status) = launcher.try_wait().unwrap() {
            break status;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(30), "launcher did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(launcher.stderr.take().unwrap()).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("rank 1 failed (signal 9)"), "{stderr}");
    assert!(stderr.contains("stopped the other 2 running rank(s)"), "{stderr}");
    assert!(ranks_of_children(launcher.id()).is_empty());
}

/// torchrun from the torch wheel that provides libtorch launches ranks of the clip binary. (A
/// libtorch that is not a wheel, which only a user's own LIBTORCH can be, comes without torchrun;
/// under `cargo xtask setup`, and so in CI, libtorch is always the wheel.)
#[test]
fn torchrun_launches_the_clip_binary() {
    let libtorch = PathBuf::from(std::env::var_os("LIBTORCH").expect("LIBTORCH is set (cargo xtask test sets it)"));
    if !libtorch.join("version.py").exists() {
        return;
    }
    // site-packages/torch -> the environment's bin/.
    let torchrun = libtorch.ancestors().nth(4).unwrap().join("bin/torchrun");
    assert!(torchrun.exists(), "{} not found", torchrun.display());
    // A free port rather than torchrun's default 29500, which something else may hold.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let output = Command::new(&torchrun)
        .args(["--nproc-per-node", "2", "--master-port", &port, "--no-python", env!("CARGO_BIN_EXE_clip")])
        .args(["dist-check", "--rounds", "2", "--elements", "1000"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("dist-check: 2 rank(s), backend gloo, 2 round(s) ok"), "{stdout}");
}

#[test]
fn dist_check_alone_forms_a_one_rank_job() {
    let output = clip().args(["dist-check", "--rounds", "2", "--elements", "100"]).env_remove("WORLD_SIZE").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("dist-check: 1 rank(s), backend gloo, 2 round(s) ok"), "{stdout}");
}

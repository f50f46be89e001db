//! `clip-testhub ROOT [options]`: the loopback hub as a process, for scripts (e.g. Python's
//! huggingface_hub pointed at it through `HF_ENDPOINT`). Prints `http://127.0.0.1:PORT` as its first
//! line, then serves until killed or until its standard input closes (`--no-stdin`: until killed).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use clip_testhub::TestHub;

const USAGE: &str =
    "usage: clip-testhub ROOT [--cut KEY:BYTES:TIMES] [--corrupt KEY] [--stall KEY:TIMES] \
[--delay KEY:MS] [--ignore-range KEY] [--private REPO:TOKEN] [--gated REPO:TOKEN] [--no-stdin]
KEY is org/name/path or datasets/org/name/path; REPO is org/name or datasets/org/name.
Counters: GET /_stats (JSON).";

fn main() {
    if let Err(message) = run() {
        let _ = writeln!(std::io::stderr(), "clip-testhub: {message}\n{USAGE}");
        std::process::exit(2);
    }
}

/// Splits `KEY:REST` at the last `n` colons.
fn split_tail(value: &str, n: usize) -> Result<(String, Vec<String>), String> {
    let mut parts: Vec<&str> = value.rsplitn(n + 1, ':').collect();
    if parts.len() != n + 1 {
        return Err(format!("malformed value {value:?}"));
    }
    parts.reverse();
    Ok((
        parts[0].to_owned(),
        parts[1..].iter().map(|s| (*s).to_owned()).collect(),
    ))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(
        args.next()
            .filter(|a| !a.starts_with("--"))
            .ok_or("ROOT is missing")?,
    );
    let hub = TestHub::start(&root);
    let mut watch_stdin = true;
    while let Some(flag) = args.next() {
        if flag == "--no-stdin" {
            watch_stdin = false;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--cut" => {
                let (key, rest) = split_tail(&value, 2)?;
                hub.cut(&key, number(&rest[0])?, number(&rest[1])?);
            }
            "--corrupt" => hub.corrupt(&value),
            "--stall" => {
                let (key, rest) = split_tail(&value, 1)?;
                hub.stall(&key, number(&rest[0])?);
            }
            "--delay" => {
                let (key, rest) = split_tail(&value, 1)?;
                hub.delay(&key, Duration::from_millis(number(&rest[0])?));
            }
            "--ignore-range" => hub.ignore_range(&value),
            "--private" | "--gated" => {
                let (repo, rest) = split_tail(&value, 1)?;
                hub.require_token(&repo, &rest[0], flag == "--gated");
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", hub.endpoint())
        .and_then(|()| stdout.flush())
        .map_err(|e| e.to_string())?;
    if watch_stdin {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        return Ok(());
    }
    loop {
        std::thread::park();
    }
}

//! The `clip-testhub` binary as scripts use it: the endpoint on the first line, faults from flags,
//! counters at `/_stats`, exit when standard input closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// One plain HTTP/1.1 request; the whole answer as text.
fn request(endpoint: &str, method: &str, path: &str) -> String {
    let host = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn binary_serves_cuts_counts_and_exits_with_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("models/org/model");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("config.json"), b"{\"a\": 1}\n").unwrap();
    std::fs::write(repo.join("weights.bin"), vec![7u8; 4096]).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clip-testhub"))
        .arg(dir.path())
        .args(["--cut", "org/model/weights.bin:100:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = line.trim().to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let head = request(&endpoint, "HEAD", "/org/model/resolve/main/weights.bin");
    assert!(head.starts_with("HTTP/1.1 302"), "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap()
        .to_owned();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let path = location
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap();
    let cut = request(&endpoint, "GET", &path);
    assert!(cut.contains("Content-Length: 4096"), "{cut}");
    let body_len = cut.len() - cut.find("\r\n\r\n").unwrap() - 4;
    assert_eq!(body_len, 100);
    let small = request(&endpoint, "GET", "/org/model/resolve/main/config.json");
    assert!(
        small.starts_with("HTTP/1.1 200") && small.ends_with("{\"a\": 1}\n"),
        "{small}"
    );
    assert!(
        request(&endpoint, "HEAD", "/org/none/resolve/main/x")
            .contains("X-Error-Code: RepoNotFound")
    );

    let stats = request(&endpoint, "GET", "/_stats");
    assert!(stats.contains("\"org/model/weights.bin\":100"), "{stats}");
    assert!(
        stats.contains(
            "\"method\":\"HEAD\",\"path\":\"/org/model/resolve/main/weights.bin\",\"count\":1"
        ),
        "{stats}"
    );

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

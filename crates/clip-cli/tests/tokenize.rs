use std::io::Write;
use std::process::{Command, Stdio};

fn run(input: &[u8], args: &[&str]) -> (String, String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clip"))
        .arg("tokenize")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("clip starts");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap(), output.status.success())
}

#[test]
fn one_json_row_per_line_in_order() {
    let (stdout, stderr, ok) = run(b"hello world\n\nHi there", &[]);
    assert!(ok, "{stderr}");
    let rows: Vec<Vec<u32>> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.len() == 77));
    assert_eq!(&rows[0][..5], &[49406, 3306, 1002, 49407, 0]);
    assert_eq!(&rows[1][..3], &[49406, 49407, 0]);
    assert_eq!(&rows[2][..5], &[49406, 1883, 997, 49407, 0]);
}

#[test]
fn invalid_utf8_is_replaced_with_a_warning() {
    let (stdout, stderr, ok) = run(b"caf\xe9\nok\n", &["--context-length", "8"]);
    assert!(ok);
    assert_eq!(stdout.lines().count(), 2);
    assert!(stdout.lines().all(|l| serde_json::from_str::<Vec<u32>>(l).unwrap().len() == 8));
    assert!(stderr.contains("line 1") && stderr.contains("U+FFFD"), "{stderr}");
}

#[test]
fn a_too_short_context_is_an_error() {
    let (_, stderr, ok) = run(b"x\n", &["--context-length", "1"]);
    assert!(!ok);
    assert!(stderr.contains("context length 1"), "{stderr}");
}

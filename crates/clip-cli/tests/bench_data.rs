use std::process::Command;

fn bench(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_clip")).arg("bench-data").args(args).arg("--json").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn builtin_source_reports_throughput_per_thread() {
    let report = bench(&["--source", "builtin", "--image-size", "32", "--batch-size", "16", "--seconds", "0.5", "--threads", "2"]);
    assert_eq!(report["threads"], 2);
    let (rate, per_thread) = (report["samples_per_s"].as_f64().unwrap(), report["samples_per_s_per_thread"].as_f64().unwrap());
    assert!(rate > 0.0 && (rate / 2.0 - per_thread).abs() < 0.1, "{report}");
    assert!(report["samples"].as_u64().unwrap() >= 32);
    assert!(report["skipped"].as_object().unwrap().values().all(|v| v == 0), "{report}");
}

#[test]
fn a_corrupt_file_in_a_folder_is_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let photo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../clip-data/tests/fixtures/images/rocket.jpg")).unwrap();
    for i in 0..3 {
        std::fs::write(dir.path().join(format!("{i}.jpg")), &photo).unwrap();
    }
    std::fs::write(dir.path().join("3.jpg"), b"not a jpeg").unwrap();
    let source = format!("folder:{}", dir.path().display());
    let report = bench(&["--source", &source, "--image-size", "32", "--batch-size", "2", "--seconds", "0.3", "--threads", "1"]);
    let corrupt = report["skipped"]["corrupt_image"].as_u64().unwrap();
    let epochs = report["epochs_started"].as_u64().unwrap();
    assert!(corrupt >= 1 && corrupt <= epochs, "{report}");
}

#[test]
fn an_unknown_source_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_clip")).args(["bench-data", "--source", "s3://bucket/x"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown source"));
}

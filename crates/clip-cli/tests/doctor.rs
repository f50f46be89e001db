use std::path::Path;
use std::process::Command;

/// The binary must start with no loader path set: its rpath has to find libtorch.
#[test]
fn doctor_runs_without_ld_library_path() {
    let output = Command::new(env!("CARGO_BIN_EXE_clip"))
        .arg("doctor")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("clip doctor starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "clip doctor failed:\n{stdout}\n{stderr}");

    let libtorch_line = stdout.lines().find(|l| l.starts_with("libtorch:")).expect("a libtorch line");
    assert!(libtorch_line.contains("2.11.0"), "{libtorch_line}");
    let root = libtorch_line.split(" at ").nth(1).expect("a libtorch path");
    // Where libtorch has CUDA, the binary must really link it (no silent --as-needed drop).
    if Path::new(root).join("lib/libtorch_cuda.so").exists() {
        assert!(stdout.contains("libtorch_cuda loaded: yes"), "{stdout}");
    }
    for field in ["CUDA:", "cuDNN:", "threads:", "Gloo:", "NCCL:", "tensor op: cpu: ok"] {
        assert!(stdout.contains(field), "{field:?} missing from:\n{stdout}");
    }
}

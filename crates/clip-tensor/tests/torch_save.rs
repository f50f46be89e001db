//! torch.save files read by the restricted unpickler. The fixtures are clip-model's (written by
//! `crates/clip-model/scripts/gen_pickles.py`), shared rather than duplicated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clip_tensor::Error;
use clip_tensor::pickle::Value;
use clip_tensor::safetensors::read_safetensors;
use clip_tensor::torch_save::{TorchSave, archive_records, read_torch_save};
use tch::Tensor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip-model/tests/fixtures/torch-save").join(name)
}

fn message(result: clip_tensor::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[test]
fn views_rebuild_exactly_in_both_layouts() {
    let expected: HashMap<String, Tensor> = read_safetensors(&fixture("views.safetensors")).unwrap().into_iter().collect();
    for name in ["views.pt", "views.legacy.bin"] {
        let tensors: HashMap<String, Tensor> = read_torch_save(&fixture(name)).unwrap().into_iter().collect();
        assert_eq!(tensors.len(), expected.len(), "{name}");
        for (key, want) in &expected {
            let got = &tensors[key];
            assert_eq!((got.kind(), got.size()), (want.kind(), want.size()), "{name}: {key}");
            assert!(got.equal(want), "{name}: {key} differs");
        }
        // Views keep their layout and share one storage, as torch rebuilds them.
        let (base, rows, transposed) = (&tensors["base"], &tensors["rows"], &tensors["transposed"]);
        assert_eq!(transposed.stride(), [1, 6], "{name}");
        assert_eq!(rows.data_ptr() as usize - base.data_ptr() as usize, 6 * 4, "{name}");
        assert_eq!(tensors["column"].stride(), [6], "{name}");
    }
}

#[test]
fn zip_records_are_listed_relative_to_the_archive_folder() {
    let records = archive_records(&fixture("views.pt")).unwrap();
    assert!(records.iter().any(|r| r == "data.pkl") && records.iter().any(|r| r == "byteorder"), "{records:?}");
}

#[test]
fn a_training_checkpoint_unpickles_whole() {
    let file = TorchSave::open(&fixture("tiny-vit.epoch_3.pt")).unwrap();
    let root = file.root();
    assert_eq!(root.get("epoch"), Some(&Value::Int(3)));
    assert_eq!(root.get("name").and_then(Value::as_str), Some("x"));
    let optimizer = root.get("optimizer").unwrap();
    let Some(Value::List(groups)) = optimizer.get("param_groups") else { panic!("{optimizer:?}") };
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].get("weight_decay"), Some(&Value::Float(0.2)));
    assert_eq!(groups[0].get("betas"), Some(&Value::Tuple(vec![Value::Float(0.9), Value::Float(0.98)].into())));
    // AdamW's moments are tensors keyed by parameter index; `step` is a 0-d tensor.
    let Some(Value::Dict(state)) = optimizer.get("state") else { panic!() };
    let (index, moments) = &state[0];
    assert_eq!(index, &Value::Int(0));
    let Some(Value::Tensor(step)) = moments.get("step") else { panic!("{moments:?}") };
    assert_eq!(f64::try_from(file.tensor(step).unwrap()).unwrap(), 1.0);
    assert!(matches!(moments.get("exp_avg_sq"), Some(Value::Tensor(_))));
    assert_eq!(root.get("scaler").and_then(|s| s.get("scale")), Some(&Value::Float(65536.0)));
    let tensors = file.tensors(root.get("state_dict").unwrap()).unwrap();
    assert!(tensors.iter().all(|(k, _)| k.starts_with("module.")));
    // The whole object is no state dict: the error names the first entry that is not a tensor.
    assert!(message(file.tensors(root)).contains("\"epoch\" is an int, not a tensor"));
}

#[test]
fn payloads_that_would_run_code_are_refused_by_name() {
    for (name, global) in [
        ("os-system", "os.system"),
        ("eval", "builtins.eval"),
        ("popen", "subprocess.Popen"),
        ("posix-system", "posix.system"),
    ] {
        for file in [format!("evil-{name}.pt"), format!("evil-{name}.pkl")] {
            let err = message(TorchSave::open(&fixture(&file)));
            assert!(err.contains(&format!("refused global {global}")) && err.contains(&file), "{file}: {err}");
        }
    }
}

#[test]
fn malformed_files_are_clear_errors() {
    for (name, needle) in [
        ("bad-truncated-pkl.pt", "truncated pickle"),
        ("bad-short-storage.pt", "record data/0 holds 16 bytes, but its storage is 1000 × 4 bytes"),
        ("bad-huge-numel.pt", "claims 4611686018427387904 elements"),
        ("bad-huge-view.pt", "does not fit 64-bit indexing"),
        ("bad-past-end.pt", "reaches element 4, but the storage has 4"),
        ("bad-big-endian.pt", "only little-endian"),
    ] {
        let err = message(read_torch_save(&fixture(name)));
        assert!(err.contains(needle) && err.contains(name), "{name}: {err}");
    }
}

#[test]
fn truncated_and_garbled_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["views.pt", "views.legacy.bin", "tiny-vit.epoch_3.pt"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let path = dir.path().join(name);
        // Cut at many points: always an error naming the file.
        for cut in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let err = read_torch_save(&path).expect_err("a truncated file must fail");
            assert!(err.to_string().contains(name), "{err}");
        }
        // Flip bytes: an error or, where the byte did not matter, tensors; never a panic.
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut garbled = bytes.clone();
            let at = (rng % bytes.len() as u64) as usize;
            garbled[at] ^= 1 << (rng >> 60 & 7);
            std::fs::write(&path, &garbled).unwrap();
            if let Ok(file) = TorchSave::open(&path) {
                let _ = file.tensors(file.root());
            }
        }
    }
}

#[test]
fn a_missing_file_is_an_io_error() {
    assert!(matches!(TorchSave::open(Path::new("/nonexistent/model.bin")), Err(Error::Io { .. })));
}

//! A tiny random model saved to a fresh folder, for the end-to-end tests of the commands that
//! load one.

use std::path::PathBuf;

use clip_model::{ClipConfig, ClipModel};
use clip_tensor::safetensors::save_var_store;
use tch::Device;
use tch::nn::VarStore;

/// The folder, the model's config and weights files, and the model itself.
pub(crate) struct Setup {
    pub(crate) dir: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) weights: PathBuf,
    pub(crate) model: ClipModel,
    _vs: VarStore,
}

/// A model of `config` (open_clip JSON) initialised from `seed`, written to
/// `TMP/NAME-PID/tiny.json` and `tiny.safetensors`; the folder starts empty.
pub(crate) fn setup(name: &str, config: &str, seed: i64) -> Setup {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("tiny.json");
    std::fs::write(&config_path, config).unwrap();
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &ClipConfig::from_json(config).unwrap());
    let weights = dir.join("tiny.safetensors");
    save_var_store(&vs, &weights).unwrap();
    Setup { dir, config: config_path, weights, model, _vs: vs }
}

/// Rows, columns and values of a float32 `.npy` file as `clip embed` writes it (format checked).
pub(crate) fn read_npy(path: &std::path::Path) -> (usize, usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.ends_with('\n') && (10 + header_len).is_multiple_of(64), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let dims: Vec<usize> = shape.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    let values = bytes[10 + header_len..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (dims[0], dims[1], values)
}

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

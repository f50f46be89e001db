//! `clip convert IN OUT.safetensors`: any supported weights file (OpenAI TorchScript, Hugging
//! Face `CLIPModel`, open_clip safetensors) rewritten as open_clip-layout safetensors.

use std::path::Path;

use anyhow::{Context, Result};
use clip_model::weights::{infer_config, read_weights};
use clip_tensor::safetensors::save_safetensors;

pub(crate) fn run(input: &Path, output: &Path) -> Result<()> {
    let (format, tensors) = read_weights(input).with_context(|| format!("reading {}", input.display()))?;
    let named: Vec<(&str, &tch::Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    save_safetensors(output, &named).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("clip convert: {} ({format:?} layout, {} tensors) -> {}", input.display(), tensors.len(), output.display());
    // Tell the user which architecture this is, when the OpenAI layout allows inferring it.
    if let Ok(config) = infer_config(&tensors, format.requires_quick_gelu()) {
        eprintln!("clip convert: architecture as OpenAI's build_model infers it: {config:?}");
    }
    Ok(())
}

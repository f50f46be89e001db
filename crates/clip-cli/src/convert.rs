//! `clip convert IN OUT.safetensors`: any supported weights file (OpenAI TorchScript, Hugging
//! Face `CLIPModel`, open_clip safetensors, torch.save pickles) rewritten as open_clip-layout
//! safetensors. The preprocessing that belongs to the weights travels in the output's metadata
//! when it is known, so that evaluating the file later never silently changes it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use clip_data::PreprocessConfig;
use clip_model::WeightsFormat;
use clip_model::weights::{infer_config, read_weights};
use clip_pretrained::open_clip_config::PREPROCESS_METADATA_KEY;
use clip_pretrained::read_open_clip_config;
use clip_tensor::safetensors::{read_safetensors_metadata, save_safetensors_with_metadata};

use crate::progress::{Bar, Unit, note};

pub(crate) fn run(input: &Path, output: &Path) -> Result<()> {
    // Neither step reports progress of its own: a spinner with the elapsed time, then a line each.
    let mut bar = Bar::new(format!("clip convert: reading {}", input.display()), None, Unit::Count("tensors"));
    let (format, tensors) = read_weights(input).with_context(|| format!("reading {}", input.display()))?;
    bar.set_position(tensors.len() as u64);
    bar.finish();
    let inferred = infer_config(&tensors, format.requires_quick_gelu()).ok();
    let image_size = inferred.as_ref().map(|c| c.vision.image_size() as u32);
    let preprocess = known_preprocess(input, format, image_size)?;
    let metadata: BTreeMap<String, String> = preprocess.iter().map(|(json, _)| (PREPROCESS_METADATA_KEY.to_owned(), json.clone())).collect();
    let named: Vec<(&str, &tch::Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut bar = Bar::new(format!("clip convert: writing {}", output.display()), None, Unit::Count("tensors"));
    save_safetensors_with_metadata(output, &named, &metadata).with_context(|| format!("writing {}", output.display()))?;
    bar.set_position(named.len() as u64);
    bar.finish();
    note(&format!("clip convert: {} ({format:?} layout, {} tensors) -> {}", input.display(), tensors.len(), output.display()));
    match &preprocess {
        Some((json, source)) => note(&format!("clip convert: recorded the preprocessing ({source}): {json}")),
        None => note("clip convert: no preprocessing known for the input; evaluation will use OpenAI's unless told otherwise"),
    }
    // Tell the user which architecture this is, when the OpenAI layout allows inferring it.
    if let Some(config) = inferred {
        note(&format!("clip convert: architecture as OpenAI's build_model infers it: {config:?}"));
    }
    Ok(())
}

/// The input's preprocessing as open_clip's `preprocess_cfg` JSON, and where it was found: an
/// `open_clip_config.json` beside it (a hub snapshot or `local-dir:` folder), the input's own
/// metadata (kept as written), or OpenAI's for OpenAI's archives.
fn known_preprocess(input: &Path, format: WeightsFormat, image_size: Option<u32>) -> Result<Option<(String, &'static str)>> {
    let beside = input.with_file_name("open_clip_config.json");
    if beside.is_file() {
        let preprocess = read_open_clip_config(&beside)?.preprocess;
        return Ok(Some((preprocess.to_open_clip_json().to_string(), "open_clip_config.json beside the input")));
    }
    if format == WeightsFormat::OpenClip
        && let Ok(metadata) = read_safetensors_metadata(input)
        && let Some(json) = metadata.get(PREPROCESS_METADATA_KEY)
    {
        return Ok(Some((json.clone(), "the input's metadata")));
    }
    if format != WeightsFormat::TorchScript {
        return Ok(None);
    }
    // The model's input size wins over a recorded `size` when the file is read back, so an
    // architecture that cannot be inferred just leaves it out.
    let mut json = PreprocessConfig::openai(image_size.unwrap_or(224)).to_open_clip_json();
    if image_size.is_none()
        && let Some(object) = json.as_object_mut()
    {
        object.remove("size");
    }
    Ok(Some((json.to_string(), "OpenAI's, for OpenAI's archive")))
}

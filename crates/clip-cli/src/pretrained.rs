//! `clip pretrained` (the (model, tag) pairs clip-rs can build, their size and whether they are
//! cached) and `clip pull` (fetch weights or benchmark datasets ahead of time, running nothing).

use anyhow::{Context, Result, bail};
use clip_hub::{Cache, Repo};
use clip_pretrained::registry::{self, Pretrained};
use clip_pretrained::ModelName;
use clip_pretrained::resolve::url_cache_dir;

use crate::hub::{Downloads, human_bytes, hub};

/// The cached copy of an entry's weights, if any (no request is made).
fn cached(cache: &Cache, entry: &Pretrained) -> Option<std::path::PathBuf> {
    let from_hub = entry.hf_hub.as_deref().and_then(|id| {
        let repo = Repo::model(id);
        entry.files.iter().find_map(|f| cache.get(&repo, f))
    });
    let from_url = || {
        let name = entry.url.as_deref()?.rsplit('/').next()?;
        Some(url_cache_dir().join(name)).filter(|p| p.is_file())
    };
    from_hub.or_else(from_url)
}

/// `clip pretrained [--model NAME] [--json]`.
pub(crate) fn list(model: Option<&str>, json: bool) -> Result<()> {
    let cache = Cache::from_env();
    let entries: Vec<&Pretrained> = registry::all().iter().filter(|e| model.is_none_or(|m| e.model == m)).collect();
    if let Some(m) = model
        && entries.is_empty()
    {
        bail!("no pretrained tags for {m}; `clip pretrained` lists every pair");
    }
    for entry in &entries {
        let file = cached(&cache, entry);
        let on_disk = file.as_ref().and_then(|f| std::fs::metadata(f).ok()).map(|m| m.len());
        if json {
            let row = serde_json::json!({
                "model": entry.model, "tag": entry.tag, "params": entry.params, "hf_hub": entry.hf_hub,
                "quick_gelu": entry.quick_gelu, "image_size": entry.image_size, "cached": file.is_some(),
                "cached_bytes": on_disk, "path": file.map(|f| f.display().to_string()),
            });
            println!("{row}");
        } else {
            let cached = on_disk.map_or_else(|| "-".to_owned(), |n| format!("cached ({})", human_bytes(n)));
            println!("{:<24} {:<36} {:>6.0}M params  {}", entry.model, entry.tag, entry.params as f64 / 1e6, cached);
        }
    }
    if !json && model.is_none() {
        let left = registry::left_out();
        eprintln!(
            "clip pretrained: {} pairs; {} more of open_clip's need towers clip-rs does not build yet (timm, Hugging Face text, CoCa, SigLIP, …)",
            entries.len(),
            left.len()
        );
    }
    Ok(())
}

/// `clip pull SPEC… [--dataset NAME…]`: `MODEL:TAG` or `hf-hub:ORG/NAME` for weights; registry
/// dataset names or `hf-hub:ORG/NAME` for datasets.
pub(crate) fn pull(specs: &[String], datasets: &[String], splits: &[String], offline: bool) -> Result<()> {
    if specs.is_empty() && datasets.is_empty() {
        bail!("nothing to pull: give MODEL:TAG, hf-hub:ORG/NAME or --dataset NAME");
    }
    let hub = hub(offline);
    let mut downloads = Downloads::new("clip pull");
    for spec in specs {
        let (model, tag) = match ModelName::parse(spec).brings_weights() {
            true => (spec.as_str(), None),
            false => match spec.rsplit_once(':') {
                Some((model, tag)) => (model, Some(tag)),
                None => bail!("{spec}: give MODEL:TAG (e.g. ViT-B-32:openai) or hf-hub:ORG/NAME"),
            },
        };
        let resolved = clip_pretrained::resolve(model, tag, &hub, &mut |p| downloads.event(p)).with_context(|| format!("pulling {spec}"))?;
        let path = resolved.weights.map(|w| w.display().to_string()).unwrap_or_default();
        println!("{spec}\t{path}");
    }
    let splits: Vec<&str> = splits.iter().map(String::as_str).collect();
    for name in datasets {
        let id = dataset_repo(name)?;
        let dir = clip_eval::fetch::fetch_dataset(&hub, &id, &splits, &mut |p| downloads.event(p)).with_context(|| format!("pulling dataset {name}"))?;
        println!("{name}\t{}", dir.display());
    }
    Ok(())
}

/// The hub dataset repo of `--datasets`/`--dataset NAME`: `hf-hub:ORG/NAME` as given, or a
/// registry dataset's CLIP_benchmark repo.
pub(crate) fn dataset_repo(name: &str) -> Result<String> {
    if name.starts_with(clip_eval::registry::HUB_PREFIX) {
        let id = clip_eval::registry::hub_repo_id(name).with_context(|| format!("{name}: give hf-hub:ORG/NAME"))?;
        return Ok(id.to_owned());
    }
    let info = clip_eval::registry::find(name).with_context(|| format!("{name}: not a registry dataset (nor hf-hub:ORG/NAME)"))?;
    info.hub_repo.clone().with_context(|| {
        format!("{name} is not on the hub (CLIP_benchmark has no copy): prepare it under --data-root as docs/hub.md describes")
    })
}

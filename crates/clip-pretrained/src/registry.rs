//! open_clip 3.3.0's pretrained (model, tag) table for the architectures clip-model builds: where
//! each tag's weights live (Hugging Face repo and files in open_clip's order, OpenAI's direct
//! URL and SHA-256), the activation they were trained with, their preprocessing, and every listed
//! pair left out with the reason. The data is `data/pretrained.json`, written from the installed
//! open_clip by `scripts/gen_pretrained.py`.
//!
//! Names as open_clip takes them: the model case-sensitive (a `/` read as `-`, as
//! `create_model` does), the tag cleaned as `pretrained._clean_tag` does (lower case, `-` as `_`).

use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;

/// One pretrained (model, tag) pair.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pretrained {
    /// open_clip's model name (`ViT-B-32`, `ViT-H-14-quickgelu`).
    pub model: String,
    /// open_clip's tag (`openai`, `laion2b_s34b_b79k`), as listed: lower case.
    pub tag: String,
    /// The clip-model preset to build: the model name itself.
    pub architecture: String,
    /// Hugging Face repo id holding the weights (`timm/vit_base_patch32_clip_224.openai`).
    pub hf_hub: Option<String>,
    /// The file the tag names inside that repo, when not open_clip's default.
    pub hf_file: Option<String>,
    /// The files to try in the repo, in open_clip's order (`open_clip_model.safetensors`, then
    /// `open_clip_pytorch_model.bin`).
    pub files: Vec<String>,
    /// The direct download URL (OpenAI's `openaipublic.azureedge.net`, and a few others).
    pub url: Option<String>,
    /// The full SHA-256 of the file at `url` (OpenAI's URLs only: their second-to-last segment).
    pub sha256: Option<String>,
    /// The weights were trained with QuickGELU (the tag decides, not the model name).
    pub quick_gelu: bool,
    /// The tag says QuickGELU but the model name's config says GELU (open_clip builds GELU
    /// then and only warns).
    pub quick_gelu_overrides_name: bool,
    /// Per-channel normalisation mean.
    pub mean: [f32; 3],
    /// Per-channel normalisation standard deviation.
    pub std: [f32; 3],
    /// Resize interpolation (`bicubic`, `bilinear`).
    pub interpolation: String,
    /// Resize mode (`shortest`, `squash`, `longest`).
    pub resize_mode: String,
    /// Input resolution of the architecture (square).
    pub image_size: u32,
    /// Parameters of open_clip's model for the architecture.
    pub params: u64,
    /// Those of them in parts clip-model does not build (CoCa's captioning decoder,
    /// `text_decoder.*`, whose weights loading sets aside); 0 for the rest.
    pub decoder_params: u64,
}

/// A pair open_clip lists that clip-model cannot build.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeftOut {
    /// open_clip's model name.
    pub model: String,
    /// open_clip's tag.
    pub tag: String,
    /// Why clip-model's parser refuses the model's config, each reason led by the key concerned
    /// (`vision_cfg.timm_model_name: timm's eva02_base_patch16_clip_224 is not built …`).
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registry {
    open_clip: String,
    pretrained: Vec<Pretrained>,
    left_out: Vec<LeftOut>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        serde_json::from_str(include_str!("../data/pretrained.json")).expect("data/pretrained.json is checked by the tests")
    })
}

/// The open_clip version the table was generated from.
pub fn open_clip_version() -> &'static str {
    &registry().open_clip
}

/// Every pair clip-model builds, in open_clip's order.
pub fn all() -> &'static [Pretrained] {
    &registry().pretrained
}

/// Every pair open_clip lists that clip-model cannot build, with the reason.
pub fn left_out() -> &'static [LeftOut] {
    &registry().left_out
}

/// A tag as open_clip compares it (`_clean_tag`: lower case, `-` as `_`).
pub fn clean_tag(tag: &str) -> String {
    tag.to_lowercase().replace('-', "_")
}

/// A model name as open_clip's `create_model` looks it up (`ViT-B/32` is `ViT-B-32`).
fn clean_model(model: &str) -> String {
    model.replace('/', "-")
}

/// The pair (`model` case-sensitive, `tag` in any case, `-` or `_`).
pub fn find(model: &str, tag: &str) -> Option<&'static Pretrained> {
    let (model, tag) = (clean_model(model), clean_tag(tag));
    all().iter().find(|p| p.model == model && p.tag == tag)
}

/// The tags of `model`, in open_clip's order (empty for a model not in the table).
pub fn tags(model: &str) -> Vec<&'static str> {
    let model = clean_model(model);
    all().iter().filter(|p| p.model == model).map(|p| p.tag.as_str()).collect()
}

/// [`find`], or what the table knows near the pair, for the error message.
pub fn lookup(model: &str, tag: &str) -> Result<&'static Pretrained, NotFound> {
    find(model, tag).ok_or_else(|| not_found(model, tag))
}

/// Why a (model, tag) pair is not in the table, with the names the user may have meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFound {
    /// The model is in the table but has no such tag.
    UnknownTag {
        /// The model.
        model: String,
        /// The tag asked for.
        tag: String,
        /// The model's tags that look like it, closest first.
        close: Vec<&'static str>,
        /// Every tag of the model, in open_clip's order.
        tags: Vec<&'static str>,
        /// The same model with or without `-quickgelu` where that has the tag.
        other_models: Vec<&'static str>,
    },
    /// open_clip lists the model (and maybe the tag) but clip-model cannot build it.
    LeftOut {
        /// The model.
        model: String,
        /// The tag asked for.
        tag: String,
        /// The reason, from the table.
        reason: &'static str,
    },
    /// No model of that name has pretrained weights.
    UnknownModel {
        /// The model asked for.
        model: String,
        /// Model names that look like it, closest first.
        close: Vec<&'static str>,
    },
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownTag { model, tag, close, tags, other_models } => {
                write!(f, "{model} has no pretrained tag {tag:?}")?;
                if !close.is_empty() {
                    write!(f, " (did you mean {}?)", close.join(" or "))?;
                }
                if !other_models.is_empty() {
                    write!(f, "; {tag} is a tag of {}", other_models.join(", "))?;
                }
                write!(f, "; its tags: {}", tags.join(", "))
            }
            Self::LeftOut { model, tag, reason } => {
                write!(f, "open_clip's {model}:{tag} is not supported: {reason}")
            }
            Self::UnknownModel { model, close } => {
                write!(f, "no pretrained weights for model {model:?}")?;
                if !close.is_empty() {
                    write!(f, " (did you mean {}?)", close.join(" or "))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for NotFound {}

/// What the table knows near an unknown pair (see [`NotFound`]).
pub fn not_found(model: &str, tag: &str) -> NotFound {
    let (model, tag) = (clean_model(model), clean_tag(tag));
    let tags = tags(&model);
    if !tags.is_empty() {
        let base = model.strip_suffix("-quickgelu").unwrap_or(&model);
        let quick = format!("{base}-quickgelu");
        let mut other_models: Vec<&'static str> =
            all().iter().filter(|p| p.tag == tag && p.model != model && (p.model == base || p.model == quick)).map(|p| p.model.as_str()).collect();
        other_models.dedup();
        return NotFound::UnknownTag { close: closest(&tag, tags.iter().copied(), false), model, tag, tags, other_models };
    }
    let left = left_out().iter().filter(|l| l.model == model);
    if let Some(l) = left.clone().find(|l| l.tag == tag).or_else(|| left.clone().next()) {
        return NotFound::LeftOut { model, tag, reason: &l.reason };
    }
    let mut names: Vec<&'static str> = all().iter().map(|p| p.model.as_str()).chain(left_out().iter().map(|l| l.model.as_str())).collect();
    names.dedup();
    NotFound::UnknownModel { close: closest(&model, names.into_iter(), true), model }
}

/// Up to three candidates near `asked` (same up to case, one a prefix of the other, or a few
/// edits apart), closest first.
fn closest<'a>(asked: &str, candidates: impl Iterator<Item = &'a str>, fold_case: bool) -> Vec<&'a str> {
    let fold = |s: &str| if fold_case { s.to_lowercase() } else { s.to_owned() };
    let asked = fold(asked);
    let limit = (asked.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &'a str)> = candidates
        .filter_map(|c| {
            let folded = fold(c);
            let distance = if folded.starts_with(&asked) || asked.starts_with(&folded) { 0 } else { edit_distance(&asked, &folded) };
            (distance <= limit).then_some((distance, c))
        })
        .collect();
    scored.sort_by_key(|&(d, _)| d);
    let mut names: Vec<&'a str> = Vec::new();
    for (_, name) in scored {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.truncate(3);
    names
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("laion2b", "laion2b"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("laion2b_s34b_b79", ["laion2b_s34b_b79k", "openai", "laion2b_e16"].into_iter(), false), ["laion2b_s34b_b79k"]);
    }
}

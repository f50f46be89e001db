//! The evaluation transform's settings and open_clip's `preprocess_cfg` JSON object for them
//! (open_clip 3.3.0 `transform.py`: `PreprocessCfg`, `merge_preprocess_dict`, `image_transform`).

use serde::{Deserialize, Serialize};

use super::{OPENAI_MEAN, OPENAI_STD, SourceImage, round_half_even};
use crate::resample::Filter;
use crate::transform::normalise_chw;
use crate::{Error, Result};

/// How the evaluation transform resamples (open_clip's `interpolation`). Palette images are
/// resized by nearest neighbour whatever this says, as PIL does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// PIL's bicubic (a = -0.5).
    #[default]
    Bicubic,
    /// PIL's bilinear (triangle filter).
    Bilinear,
}

impl Interpolation {
    /// Every interpolation, in open_clip's order.
    pub const ALL: [Self; 2] = [Self::Bicubic, Self::Bilinear];

    /// open_clip's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bicubic => "bicubic",
            Self::Bilinear => "bilinear",
        }
    }

    pub(super) fn filter(self) -> Filter {
        match self {
            Self::Bicubic => Filter::Bicubic,
            Self::Bilinear => Filter::Bilinear,
        }
    }
}

/// How the evaluation transform fits an image to the square input (open_clip's `resize_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Shorter side to the input size, then a centre crop (`Resize(size)`, `CenterCrop`).
    #[default]
    Shortest,
    /// Longer side to the input size, then zero padding (`ResizeKeepRatio(longest=1)`,
    /// `CenterCropOrPad`).
    Longest,
    /// Both sides to the input size, the aspect ratio given up (`Resize((size, size))`).
    Squash,
}

impl ResizeMode {
    /// Every resize mode, in open_clip's order.
    pub const ALL: [Self; 3] = [Self::Shortest, Self::Longest, Self::Squash];

    /// open_clip's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shortest => "shortest",
            Self::Longest => "longest",
            Self::Squash => "squash",
        }
    }

    /// The (width, height) a `width × height` image is resized to before cropping or padding to
    /// `size`, with torchvision's and open_clip's arithmetic; sides are at least 1.
    pub fn resized(self, width: u32, height: u32, size: u32) -> (u32, u32) {
        let (w, h, s) = (f64::from(width), f64::from(height), f64::from(size));
        let (out_w, out_h) = match self {
            // torchvision `_compute_resized_output_size`: `int(size * long / short)`.
            Self::Shortest if width <= height => (size, (s * h / w) as u32),
            Self::Shortest => ((s * w / h) as u32, size),
            // `ResizeKeepRatio.get_params` with longest=1: ratio = max(h / size, w / size), each
            // side `round(side / ratio)` (Python's round, half to even).
            Self::Longest => {
                let ratio = (h / s).max(w / s);
                (round_half_even(w / ratio) as u32, round_half_even(h / ratio) as u32)
            }
            Self::Squash => (size, size),
        };
        (out_w.max(1), out_h.max(1))
    }
}

/// `FromStr` by open_clip's names (an unknown one is an error naming it and the known ones) and
/// `Display` as them, for an enum with `ALL` and `as_str`.
macro_rules! open_clip_names {
    ($ty:ty, $what:literal) => {
        impl std::str::FromStr for $ty {
            type Err = Error;

            fn from_str(name: &str) -> Result<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == name).ok_or_else(|| {
                    let known: Vec<String> = Self::ALL.iter().map(|v| format!("{:?}", v.as_str())).collect();
                    Error::Preprocess(format!("unknown {} {name:?} (expected one of {})", $what, known.join(", ")))
                })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_clip_names!(Interpolation, "interpolation");
open_clip_names!(ResizeMode, "resize mode");

/// The evaluation transform's parameters. All but the size belong to the weights, not the
/// architecture: open_clip keeps them with the pretrained tag (`preprocess_cfg`).
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    /// Output side.
    pub image_size: u32,
    /// Per-channel mean, subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    pub std: [f32; 3],
    /// Resampling filter.
    pub interpolation: Interpolation,
    /// How the image is fitted to the square.
    pub resize_mode: ResizeMode,
}

impl PreprocessConfig {
    /// OpenAI CLIP's transform at `image_size`: its statistics, bicubic, shortest side.
    pub fn openai(image_size: u32) -> Self {
        Self {
            image_size,
            mean: OPENAI_MEAN,
            std: OPENAI_STD,
            interpolation: Interpolation::Bicubic,
            resize_mode: ResizeMode::Shortest,
        }
    }

    /// Checks the size is at least 1, the means finite and the standard deviations finite and
    /// positive.
    pub fn validate(&self) -> Result<()> {
        validate_transform(self.image_size, &self.mean, &self.std)
    }

    /// open_clip's `preprocess_cfg` object (the keys of its `PreprocessCfg`: `mean`, `std`,
    /// `interpolation`, `resize_mode`, `size`, `mode`, `fill_color`) over its defaults (OpenAI's
    /// statistics, bicubic, shortest), as `merge_preprocess_dict` reads it: other keys and null
    /// values are ignored, a single number or one-element list of statistics stands for all three
    /// channels, and a falsy one (`0`, `[]`) is the default, as `image_transform`'s `mean or …`
    /// makes it. `image_size` is the model's input size, which wins over `size` as in open_clip's
    /// factory (`size` is only checked for form). `"random"` interpolation (training only) is
    /// bicubic, as open_clip's eval transform makes it. Only `mode` "RGB" and `fill_color` 0 exist
    /// in open_clip's presets; others are errors, as are unknown names and unusable statistics.
    pub fn from_open_clip_json(json: &serde_json::Value, image_size: u32) -> Result<Self> {
        let bad = |m: String| Error::Preprocess(m);
        let object = json.as_object().ok_or_else(|| bad(format!("preprocess_cfg must be a JSON object, not {json}")))?;
        let get = |key: &str| object.get(key).filter(|v| !v.is_null());
        let name = |key: &str| -> Result<Option<&str>> {
            get(key).map(|v| v.as_str().ok_or_else(|| bad(format!("{key} must be a string, not {v}")))).transpose()
        };
        let interpolation = match name("interpolation")? {
            None | Some("random") => Interpolation::Bicubic,
            Some(other) => other.parse()?,
        };
        let resize_mode = name("resize_mode")?.map(str::parse).transpose()?.unwrap_or_default();
        if let Some(mode) = name("mode")?
            && mode != "RGB"
        {
            return Err(bad(format!("mode {mode:?} is not supported (open_clip knows \"RGB\" only)")));
        }
        if let Some(fill) = get("fill_color")
            && fill.as_f64() != Some(0.0)
        {
            return Err(bad(format!("fill_color {fill} is not supported (only 0, open_clip's default)")));
        }
        if let Some(size) = get("size") {
            let side = |v: &serde_json::Value| v.as_u64().is_some_and(|n| n > 0);
            let ok = side(size) || size.as_array().is_some_and(|a| a.len() == 2 && a.iter().all(side));
            if !ok {
                return Err(bad(format!("size must be a positive integer or [height, width], not {size}")));
            }
        }
        let config = Self {
            image_size,
            mean: stats(get("mean"), "mean", OPENAI_MEAN)?,
            std: stats(get("std"), "std", OPENAI_STD)?,
            interpolation,
            resize_mode,
        };
        config.validate()?;
        Ok(config)
    }

    /// This configuration as open_clip's `preprocess_cfg` (all of `PreprocessCfg`'s keys), the
    /// statistics written as the shortest decimals that read back to the same `f32`.
    pub fn to_open_clip_json(&self) -> serde_json::Value {
        let decimal = |v: f32| v.to_string().parse::<f64>().unwrap_or(f64::from(v));
        serde_json::json!({
            "size": self.image_size,
            "mode": "RGB",
            "mean": self.mean.map(decimal),
            "std": self.std.map(decimal),
            "interpolation": self.interpolation.as_str(),
            "resize_mode": self.resize_mode.as_str(),
            "fill_color": 0,
        })
    }

    /// Resize, crop or pad, RGB: the 8-bit image `ToTensor` would see, `[size, size, 3]` row-major.
    pub fn rgb_u8(&self, image: &SourceImage) -> Vec<u8> {
        let (w, h) = self.resize_mode.resized(image.width, image.height, self.image_size);
        let resized = image.resize(w, h, self.interpolation);
        match self.resize_mode {
            ResizeMode::Squash => resized.to_rgb(),
            ResizeMode::Shortest | ResizeMode::Longest => resized.center_crop(self.image_size).to_rgb(),
        }
    }

    /// The model's input: `[3, size, size]` (channel-major) normalised floats.
    pub fn apply(&self, image: &SourceImage) -> Vec<f32> {
        normalise_chw(&self.rgb_u8(image), &self.mean, &self.std)
    }
}

/// A side of at least 1, means finite, standard deviations finite and positive.
pub(crate) fn validate_transform(image_size: u32, mean: &[f32; 3], std: &[f32; 3]) -> Result<()> {
    if image_size == 0 {
        return Err(Error::Preprocess("image size must be at least 1".into()));
    }
    if mean.iter().any(|m| !m.is_finite()) || std.iter().any(|s| !s.is_finite() || *s <= 0.0) {
        return Err(Error::Preprocess(format!(
            "mean {mean:?} and std {std:?} must be finite, std above 0"
        )));
    }
    Ok(())
}

/// A `preprocess_cfg` statistic: three numbers, or one for all channels; falsy means `default`.
fn stats(value: Option<&serde_json::Value>, key: &str, default: [f32; 3]) -> Result<[f32; 3]> {
    let Some(value) = value else { return Ok(default) };
    let bad = || Error::Preprocess(format!("{key} must be a number or a list of 1 or 3 numbers, not {value}"));
    let numbers: Vec<f64> = match value {
        // Python's `mean or default`: an empty list and a zero are falsy.
        serde_json::Value::Array(items) if items.is_empty() => return Ok(default),
        serde_json::Value::Array(items) => items.iter().map(|v| v.as_f64().ok_or_else(bad)).collect::<Result<_>>()?,
        v if v.as_f64() == Some(0.0) => return Ok(default),
        v => vec![v.as_f64().ok_or_else(bad)?],
    };
    match numbers[..] {
        [v] => Ok([v as f32; 3]),
        [r, g, b] => Ok([r as f32, g as f32, b as f32]),
        _ => Err(bad()),
    }
}

//! Decoding and CLIP's evaluation transform, as OpenAI CLIP and open_clip compose it from PIL and
//! torchvision: `Resize(size, BICUBIC)` (shorter side), `CenterCrop(size)`, `convert("RGB")`,
//! `ToTensor`, `Normalize(mean, std)`. Note the order: PIL resizes in the image's own mode and
//! converts to RGB only afterwards, so the mode decides how pixels are resized:
//!
//! - RGB and grey (L): PIL's bicubic;
//! - with alpha (RGBA, LA): bicubic on alpha-premultiplied values, then un-premultiplied, and the
//!   alpha dropped by the conversion;
//! - palette (P: indexed PNG, GIF): nearest neighbour, which PIL forces for palette images.
//!
//! 16-bit images are reduced to their high byte, as PIL's PNG decoder does for colour images.

use std::io::Cursor;

use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::resample::{resize_bicubic, resize_nearest};
use crate::transform::normalise_chw;
use crate::{Error, Result};

/// OpenAI's normalisation statistics (`clip/clip.py::_transform`).
pub const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// See [`OPENAI_MEAN`].
pub const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// Decoding refuses images larger than this many pixels (PIL's decompression-bomb error level).
pub const MAX_PIXELS: u64 = 2 * 89_478_485;

/// How PIL would hold the decoded image: it decides how the image is resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageMode {
    /// Grey.
    L,
    /// Grey with alpha.
    La,
    /// Colour.
    Rgb,
    /// Colour with alpha.
    Rgba,
    /// Palette (indexed PNG, GIF), expanded here to RGB.
    P,
}

impl ImageMode {
    fn channels(self) -> usize {
        match self {
            Self::L => 1,
            Self::La => 2,
            Self::Rgb | Self::P => 3,
            Self::Rgba => 4,
        }
    }
}

/// A decoded image: interleaved 8-bit channels in `mode`'s layout.
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// PIL's mode for it.
    pub mode: ImageMode,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major pixels, `mode`'s channels each.
    pub pixels: Vec<u8>,
}

/// Whether a PNG stores palette indices (PIL opens it as mode P).
fn png_is_indexed(bytes: &[u8]) -> bool {
    // The IHDR chunk's colour type sits at byte 25 of every PNG.
    bytes.len() > 25 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes[25] == 3
}

impl SourceImage {
    /// Decodes JPEG, PNG, WebP or GIF (first frame) bytes. A decoder that panics on hostile
    /// input is contained: the panic becomes an error for this image alone.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        contain_panics(|| Self::decode_unguarded(bytes))
    }

    fn decode_unguarded(bytes: &[u8]) -> Result<Self> {
        let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::Decode(e.to_string()))?;
        let format = reader.format().ok_or_else(|| Error::Decode("unrecognised image format".into()))?;
        let mut decoder = reader.into_decoder().map_err(|e| Error::Decode(e.to_string()))?;
        let (width, height) = decoder.dimensions();
        let pixels = u64::from(width) * u64::from(height);
        if pixels > MAX_PIXELS {
            return Err(Error::TooLarge { width, height, limit: MAX_PIXELS });
        }
        let mut limits = Limits::default();
        limits.max_image_width = Some(width);
        limits.max_image_height = Some(height);
        decoder.set_limits(limits).map_err(|e| Error::Decode(e.to_string()))?;
        let color = decoder.color_type();
        let image = DynamicImage::from_decoder(decoder).map_err(|e| Error::Decode(e.to_string()))?;
        let palette = format == ImageFormat::Gif || (format == ImageFormat::Png && png_is_indexed(bytes));
        let (mode, pixels) = if palette {
            (ImageMode::P, image.to_rgb8().into_raw())
        } else {
            match color {
                ColorType::L8 => (ImageMode::L, image.into_luma8().into_raw()),
                ColorType::La8 => (ImageMode::La, image.into_luma_alpha8().into_raw()),
                ColorType::Rgb8 => (ImageMode::Rgb, image.into_rgb8().into_raw()),
                ColorType::Rgba8 => (ImageMode::Rgba, image.into_rgba8().into_raw()),
                ColorType::Rgb16 => (ImageMode::Rgb, high_bytes(&image.into_rgb16().into_raw())),
                ColorType::Rgba16 => (ImageMode::Rgba, high_bytes(&image.into_rgba16().into_raw())),
                ColorType::L16 => (ImageMode::L, high_bytes(&image.into_luma16().into_raw())),
                ColorType::La16 => (ImageMode::La, high_bytes(&image.into_luma_alpha16().into_raw())),
                _ => (ImageMode::Rgb, image.into_rgb8().into_raw()),
            }
        };
        Ok(Self { mode, width, height, pixels })
    }

    /// torchvision `Resize(size)` on a PIL image: the shorter side becomes `size`, the longer
    /// `int(size · long / short)`, resized in the image's own mode.
    pub fn resize_shorter(&self, size: u32) -> Self {
        let (w, h) = (self.width as u64, self.height as u64);
        let size64 = u64::from(size);
        let (out_w, out_h) = if w <= h {
            (size64, (size as f64 * h as f64 / w as f64) as u64)
        } else {
            ((size as f64 * w as f64 / h as f64) as u64, size64)
        };
        let (out_w, out_h) = (out_w.max(1) as usize, out_h.max(1) as usize);
        let (w, h, c) = (self.width as usize, self.height as usize, self.mode.channels());
        let pixels = match self.mode {
            ImageMode::P => resize_nearest(&self.pixels, w, h, c, out_w, out_h),
            ImageMode::L | ImageMode::Rgb => resize_bicubic(&self.pixels, w, h, c, out_w, out_h),
            ImageMode::La | ImageMode::Rgba => {
                let premultiplied = premultiply(&self.pixels, c);
                unpremultiply(&resize_bicubic(&premultiplied, w, h, c, out_w, out_h), c)
            }
        };
        Self { mode: self.mode, width: out_w as u32, height: out_h as u32, pixels }
    }

    /// torchvision `CenterCrop(size)`: offsets `round((dim - size) / 2)` with Python's
    /// round-half-to-even; zero padding where the image is smaller.
    pub fn center_crop(&self, size: u32) -> Self {
        let c = self.mode.channels();
        let offset = |dim: u32| -> i64 { round_half_even((i64::from(dim) - i64::from(size)) as f64 / 2.0) };
        let (top, left) = (offset(self.height), offset(self.width));
        let mut pixels = vec![0u8; size as usize * size as usize * c];
        for y in 0..size as i64 {
            let sy = y + top;
            if sy < 0 || sy >= i64::from(self.height) {
                continue;
            }
            for x in 0..size as i64 {
                let sx = x + left;
                if sx < 0 || sx >= i64::from(self.width) {
                    continue;
                }
                let src = (sy as usize * self.width as usize + sx as usize) * c;
                let dst = (y as usize * size as usize + x as usize) * c;
                pixels[dst..dst + c].copy_from_slice(&self.pixels[src..src + c]);
            }
        }
        Self { mode: self.mode, width: size, height: size, pixels }
    }

    /// PIL's `convert("RGB")`: grey replicated, alpha dropped.
    pub fn to_rgb(&self) -> Vec<u8> {
        match self.mode {
            ImageMode::Rgb | ImageMode::P => self.pixels.clone(),
            ImageMode::L => self.pixels.iter().flat_map(|&v| [v, v, v]).collect(),
            ImageMode::La => self.pixels.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0]]).collect(),
            ImageMode::Rgba => self.pixels.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        }
    }
}

/// Runs a decoder, turning a panic on hostile input into [`Error::DecoderPanic`] for this image.
pub(crate) fn contain_panics<T>(decode: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or(Err(Error::DecoderPanic))
}

fn high_bytes(values: &[u16]) -> Vec<u8> {
    values.iter().map(|&v| (v >> 8) as u8).collect()
}

fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 { (r - x.signum()) as i64 } else { r as i64 }
}

/// PIL's `MULDIV255`: `a·b/255` rounded, in integers.
fn muldiv255(a: u32, b: u32) -> u8 {
    let t = a * b + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// PIL's RGBA → RGBa (and LA → La): colour channels scaled by alpha.
fn premultiply(pixels: &[u8], channels: usize) -> Vec<u8> {
    let mut out = pixels.to_vec();
    for p in out.chunks_exact_mut(channels) {
        let alpha = u32::from(p[channels - 1]);
        for v in &mut p[..channels - 1] {
            *v = muldiv255(u32::from(*v), alpha);
        }
    }
    out
}

/// PIL's RGBa → RGBA: colour divided by alpha, except where alpha is 0 or 255.
fn unpremultiply(pixels: &[u8], channels: usize) -> Vec<u8> {
    let mut out = pixels.to_vec();
    for p in out.chunks_exact_mut(channels) {
        let alpha = u32::from(p[channels - 1]);
        if alpha != 0 && alpha != 255 {
            for v in &mut p[..channels - 1] {
                *v = (255 * u32::from(*v) / alpha).min(255) as u8;
            }
        }
    }
    out
}

/// The evaluation transform's parameters (they belong to the weights, not the architecture).
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    /// Output side.
    pub image_size: u32,
    /// Per-channel mean, subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    pub std: [f32; 3],
}

impl PreprocessConfig {
    /// OpenAI's statistics at `image_size`.
    pub fn openai(image_size: u32) -> Self {
        Self { image_size, mean: OPENAI_MEAN, std: OPENAI_STD }
    }

    /// Resize, crop, RGB: the 8-bit image `ToTensor` would see, `[size, size, 3]` row-major.
    pub fn rgb_u8(&self, image: &SourceImage) -> Vec<u8> {
        image.resize_shorter(self.image_size).center_crop(self.image_size).to_rgb()
    }

    /// The model's input: `[3, size, size]` (channel-major) normalised floats.
    pub fn apply(&self, image: &SourceImage) -> Vec<f32> {
        normalise_chw(&self.rgb_u8(image), &self.mean, &self.std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding_and_pil_integer_maths() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(-0.5), 0);
        assert_eq!(round_half_even(3.2), 3);
        assert_eq!(muldiv255(255, 255), 255);
        assert_eq!(muldiv255(200, 128), 100);
        assert_eq!(unpremultiply(&premultiply(&[200, 100, 50, 255], 4), 4), vec![200, 100, 50, 255]);
    }
}

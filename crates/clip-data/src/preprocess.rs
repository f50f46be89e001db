//! Decoding and CLIP's evaluation transform, as open_clip (`image_transform(size, is_train=False,
//! mean, std, resize_mode, interpolation)`) and OpenAI CLIP compose it from PIL and torchvision.
//! The weights decide four settings ([`PreprocessConfig`], read from open_clip's `preprocess_cfg`):
//! mean, std, the interpolation (bicubic or bilinear) and the resize mode:
//!
//! - `shortest`: `Resize(size)` (shorter side to `size`, longer `int(size · long / short)`), then
//!   `CenterCrop(size)`;
//! - `longest`: `ResizeKeepRatio(size, longest=1)` (longer side to `size`, both sides
//!   `round(side / ratio)`), then `CenterCropOrPad(size, fill=0)`;
//! - `squash`: `Resize((size, size))`, the aspect ratio given up;
//!
//! then `convert("RGB")`, `ToTensor`, `Normalize(mean, std)`. Note the order: PIL resizes and pads
//! in the image's own mode and converts to RGB only afterwards, so the mode decides how pixels are
//! resized and what the padding is:
//!
//! - RGB and grey (L): PIL's bicubic or bilinear;
//! - with alpha (RGBA, LA): the same on alpha-premultiplied values, then un-premultiplied, and the
//!   alpha dropped by the conversion;
//! - palette (P: indexed PNG, GIF): nearest neighbour, which PIL forces for palette images whatever
//!   the interpolation; padding is palette index 0, so it takes that entry's colour, not black.
//!
//! 16-bit images are reduced to their high byte, as PIL's PNG decoder does for colour images.
//! Every (interpolation, resize mode) pair is bit-exact with open_clip 3.3.0 on the 8-bit images of
//! `tests/fixtures` (JPEGs up to their decoder, which is not libjpeg).

use std::io::Cursor;

use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::resample::{resize_convolution, resize_nearest};
use crate::{Error, Result};

mod config;

pub(crate) use config::validate_transform;
pub use config::{Interpolation, PreprocessConfig, ResizeMode};

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
    /// The colour torchvision's zero padding shows: black, except for a palette image, where 0 is
    /// an index and the padding takes palette entry 0's colour. Read for mode P only.
    pub zero_colour: [u8; 3],
}

/// Palette entry 0 of an indexed PNG (its `PLTE` chunk) or a GIF's first frame (its local colour
/// table, else the global one); black when there is none.
fn palette_zero(bytes: &[u8], format: ImageFormat) -> [u8; 3] {
    let entry = |at: usize| bytes.get(at..at + 3).map(|p| [p[0], p[1], p[2]]);
    let found = match format {
        ImageFormat::Png => {
            let mut at = 8;
            let mut found = None;
            while let Some(header) = bytes.get(at..at + 8) {
                let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
                match &header[4..8] {
                    b"PLTE" => {
                        found = entry(at + 8).filter(|_| len >= 3);
                        break;
                    }
                    b"IDAT" | b"IEND" => break,
                    _ => at += 12 + len,
                }
            }
            found
        }
        ImageFormat::Gif => gif_palette_zero(bytes, entry),
        _ => None,
    };
    found.unwrap_or([0; 3])
}

fn gif_palette_zero(bytes: &[u8], entry: impl Fn(usize) -> Option<[u8; 3]>) -> Option<[u8; 3]> {
    let table_len = |packed: u8| 3usize << ((packed & 7) + 1);
    let packed = *bytes.get(10)?;
    let global = (packed & 0x80 != 0).then(|| entry(13)).flatten();
    let mut at = 13 + if packed & 0x80 != 0 { table_len(packed) } else { 0 };
    loop {
        match *bytes.get(at)? {
            // Extension: label, then data sub-blocks up to an empty one.
            0x21 => {
                at += 2;
                loop {
                    let len = usize::from(*bytes.get(at)?);
                    at += 1 + len;
                    if len == 0 {
                        break;
                    }
                }
            }
            // Image descriptor: its packed byte says whether a local table follows.
            0x2C => {
                let local = *bytes.get(at + 9)?;
                return if local & 0x80 != 0 { entry(at + 10) } else { global };
            }
            _ => return global,
        }
    }
}

/// Whether a PNG stores palette indices (PIL opens it as mode P).
fn png_is_indexed(bytes: &[u8]) -> bool {
    // The IHDR chunk's colour type sits at byte 25 of every PNG.
    bytes.len() > 25 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes[25] == 3
}

/// An image already decoded by the `image` crate, in the PIL mode of its colour type (16-bit
/// channels reduced to their high byte, as [`SourceImage::decode`] does). Palette information is
/// gone from a `DynamicImage`, so an indexed image counts as RGB.
impl From<DynamicImage> for SourceImage {
    fn from(image: DynamicImage) -> Self {
        let (width, height) = (image.width(), image.height());
        let (mode, pixels) = match image.color() {
            ColorType::L8 => (ImageMode::L, image.into_luma8().into_raw()),
            ColorType::La8 => (ImageMode::La, image.into_luma_alpha8().into_raw()),
            ColorType::Rgb8 => (ImageMode::Rgb, image.into_rgb8().into_raw()),
            ColorType::Rgba8 => (ImageMode::Rgba, image.into_rgba8().into_raw()),
            ColorType::Rgb16 => (ImageMode::Rgb, high_bytes(&image.into_rgb16().into_raw())),
            ColorType::Rgba16 => (ImageMode::Rgba, high_bytes(&image.into_rgba16().into_raw())),
            ColorType::L16 => (ImageMode::L, high_bytes(&image.into_luma16().into_raw())),
            ColorType::La16 => (ImageMode::La, high_bytes(&image.into_luma_alpha16().into_raw())),
            _ => (ImageMode::Rgb, image.into_rgb8().into_raw()),
        };
        Self { mode, width, height, pixels, zero_colour: [0; 3] }
    }
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
        let image = DynamicImage::from_decoder(decoder).map_err(|e| Error::Decode(e.to_string()))?;
        let palette = format == ImageFormat::Gif || (format == ImageFormat::Png && png_is_indexed(bytes));
        if palette {
            let zero_colour = palette_zero(bytes, format);
            return Ok(Self { mode: ImageMode::P, width, height, pixels: image.to_rgb8().into_raw(), zero_colour });
        }
        Ok(Self::from(image))
    }

    /// PIL's `Image.resize((width, height), interpolation)` on the whole image, in its own mode
    /// (nearest neighbour for palette images, premultiplied alpha for LA and RGBA). Sides are at
    /// least 1.
    pub fn resize(&self, width: u32, height: u32, interpolation: Interpolation) -> Self {
        let (out_w, out_h) = (width.max(1), height.max(1));
        if (out_w, out_h) == (self.width, self.height) {
            return self.clone();
        }
        let (from, to) = ((self.width as usize, self.height as usize), (out_w as usize, out_h as usize));
        let c = self.mode.channels();
        let filter = interpolation.filter();
        let pixels = match self.mode {
            ImageMode::P => resize_nearest(&self.pixels, from, c, to, &self.zero_colour),
            ImageMode::L | ImageMode::Rgb => resize_convolution(&self.pixels, from, c, to, filter),
            ImageMode::La | ImageMode::Rgba => {
                let premultiplied = premultiply(&self.pixels, c);
                unpremultiply(&resize_convolution(&premultiplied, from, c, to, filter), c)
            }
        };
        Self { mode: self.mode, width: out_w, height: out_h, pixels, zero_colour: self.zero_colour }
    }

    /// torchvision `Resize(size)` on a PIL image, bicubic: the shorter side becomes `size`, the
    /// longer `int(size · long / short)`, resized in the image's own mode.
    pub fn resize_shorter(&self, size: u32) -> Self {
        let (w, h) = ResizeMode::Shortest.resized(self.width, self.height, size);
        self.resize(w, h, Interpolation::Bicubic)
    }

    /// torchvision `CenterCrop(size)`, which is also open_clip's `CenterCropOrPad(size, fill=0)`:
    /// where the image is smaller, zero padding first (`(size - dim) // 2` before, the rest
    /// after), then offsets `round((dim - size) / 2)` with Python's round-half-to-even.
    pub fn center_crop(&self, size: u32) -> Self {
        let c = self.mode.channels();
        // The padded side, and where the original starts in it.
        let pad = |dim: u32| if size > dim { (size, i64::from((size - dim) / 2)) } else { (dim, 0) };
        let offset = |padded: u32| round_half_even((f64::from(padded) - f64::from(size)) / 2.0);
        let ((padded_h, pad_top), (padded_w, pad_left)) = (pad(self.height), pad(self.width));
        let (top, left) = (offset(padded_h) - pad_top, offset(padded_w) - pad_left);
        let zero = if self.mode == ImageMode::P { self.zero_colour.to_vec() } else { vec![0; c] };
        let (w, h, side) = (i64::from(self.width), i64::from(self.height), i64::from(size));
        // Output columns [x0, x1) come from the image, the rest is padding.
        let (x0, x1) = ((-left).clamp(0, side), (w - left).clamp(0, side));
        let mut pixels = Vec::with_capacity(size as usize * size as usize * c);
        let pad = |pixels: &mut Vec<u8>, n: i64| (0..n).for_each(|_| pixels.extend_from_slice(&zero));
        for y in 0..side {
            let sy = y + top;
            if !(0..h).contains(&sy) || x0 >= x1 {
                pad(&mut pixels, side);
                continue;
            }
            pad(&mut pixels, x0);
            let row = sy as usize * self.width as usize;
            pixels.extend_from_slice(&self.pixels[(row + (x0 + left) as usize) * c..(row + (x1 + left) as usize) * c]);
            pad(&mut pixels, side - x1);
        }
        Self { mode: self.mode, width: size, height: size, pixels, zero_colour: self.zero_colour }
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

pub(crate) fn round_half_even(x: f64) -> i64 {
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

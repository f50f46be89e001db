//! The training transform, open_clip's `image_transform(size, is_train=True)`:
//! `RandomResizedCrop(size, scale=(0.9, 1.0), ratio=(3/4, 4/3), bicubic)`, RGB, `ToTensor`,
//! `Normalize`. Unlike the evaluation transform it needs no bit-parity with PIL (the crop is random
//! anyway), so it takes the fast road. The crop is drawn from the JPEG's header before any pixel is
//! decoded; the JPEG is then decoded to RGB by libjpeg-turbo (through `mozjpeg`, with its SIMD) at
//! the smallest DCT scale (1, 1/2, 1/4, 1/8) that keeps the crop at or above the output size
//! ([`decode_scale`]), as PIL's `draft` and DALI do, the crop box scaled with it. A file
//! libjpeg-turbo refuses or cannot give as RGB (CMYK; corrupt data, whose warnings count as errors
//! here) is decoded in full by zune-jpeg, whose strictness then decides, so the same files are
//! skipped with or without scaled decoding ([`TrainTransform::scaled_decode`]). The crop and resize
//! are one pass of `fast_image_resize`'s SIMD convolution with PIL's bicubic kernel (Catmull-Rom,
//! support widened when shrinking, as PIL does). open_clip always crops bicubic here, whatever the
//! weights' interpolation; only their mean and std carry over ([`TrainTransform::with_stats`]).

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rand::Rng;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

mod libjpeg;

use crate::preprocess::{MAX_PIXELS, OPENAI_MEAN, OPENAI_STD, SourceImage, contain_panics, validate_transform};
use crate::{Error, Result};

/// An 8-bit RGB image, row-major.
#[derive(Debug, Clone)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width · height · 3` bytes.
    pub pixels: Vec<u8>,
}

impl From<&SourceImage> for RgbImage {
    fn from(image: &SourceImage) -> Self {
        Self { width: image.width, height: image.height, pixels: image.to_rgb() }
    }
}

/// Decodes any supported image to RGB; JPEGs through zune-jpeg (the fast path), the rest through
/// [`SourceImage::decode`]. Panics are contained and the pixel limit applies, as for eval decoding.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage> {
    if is_jpeg(bytes) {
        let mut pixels = Vec::new();
        let (width, height) = decode_jpeg_into(bytes, &mut pixels)?;
        Ok(RgbImage { width, height, pixels })
    } else {
        SourceImage::decode(bytes).map(|image| RgbImage::from(&image))
    }
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Decodes a JPEG to RGB into `buffer` (grown as needed, never shrunk: a decode thread reuses one
/// buffer instead of allocating and zero-filling megabytes per photo); returns the dimensions, the
/// pixels being `buffer[..width · height · 3]`. Panics are contained.
fn decode_jpeg_into(bytes: &[u8], buffer: &mut Vec<u8>) -> Result<(u32, u32)> {
    contain_panics(|| decode_jpeg_unguarded(bytes, buffer))
}

fn decode_jpeg_unguarded(bytes: &[u8], buffer: &mut Vec<u8>) -> Result<(u32, u32)> {
    let mut decoder = jpeg_decoder_for(bytes);
    let (width, height) = jpeg_headers(&mut decoder)?;
    decode_jpeg_body(decoder, width, height, buffer)?;
    Ok((width, height))
}

fn jpeg_decoder_for(bytes: &[u8]) -> JpegDecoder<ZCursor<&[u8]>> {
    // JPEG's own limit (65535 a side); the pixel-count limit in `jpeg_headers` is the one that
    // applies. Strict: a file cut short is an error (as in PIL), not an image padded with grey.
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    JpegDecoder::new_with_options(ZCursor::new(bytes), options)
}

/// Reads the headers: the dimensions, checked against [`MAX_PIXELS`].
fn jpeg_headers(decoder: &mut JpegDecoder<ZCursor<&[u8]>>) -> Result<(u32, u32)> {
    decoder.decode_headers().map_err(|e| Error::Decode(e.to_string()))?;
    let (width, height) = decoder.dimensions().ok_or_else(|| Error::Decode("JPEG without dimensions".into()))?;
    let (width, height) = (width as u32, height as u32);
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::TooLarge { width, height, limit: MAX_PIXELS });
    }
    Ok((width, height))
}

/// Decodes the whole image, its headers read, into `buffer[..width · height · 3]`.
fn decode_jpeg_body(mut decoder: JpegDecoder<ZCursor<&[u8]>>, width: u32, height: u32, buffer: &mut Vec<u8>) -> Result<()> {
    let len = width as usize * height as usize * 3;
    if decoder.output_buffer_size() != Some(len) {
        return Err(Error::Decode(format!("JPEG would decode to {:?} bytes, not {width}x{height}x3", decoder.output_buffer_size())));
    }
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
    decoder.decode_into(&mut buffer[..len]).map_err(|e| Error::Decode(e.to_string()))
}

/// Decodes a JPEG at `1/scale` of its size (`scale` 1, 2, 4 or 8) by libjpeg-turbo's scaled IDCT,
/// to RGB: `ceil(side / scale)` a side. `None` where it cannot give RGB (CMYK and YCCK JPEGs; the
/// training transform decodes those in full by zune-jpeg instead). Strict: corrupt data, which
/// libjpeg only warns about (a file cut short is padded with grey), is an error. Panics are
/// contained and the pixel limit applies, as for [`decode_rgb`].
pub fn decode_jpeg_scaled(bytes: &[u8], scale: u32) -> Result<Option<RgbImage>> {
    let mut pixels = Vec::new();
    Ok(libjpeg::decode_into(bytes, scale, &mut pixels)?.map(|(width, height)| {
        pixels.truncate(width as usize * height as usize * 3);
        RgbImage { width, height, pixels }
    }))
}

/// A crop window in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// First row.
    pub top: u32,
    /// First column.
    pub left: u32,
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
}

/// `RandomResizedCrop` followed by normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTransform {
    /// Output side.
    pub image_size: u32,
    /// Range of the crop's share of the image area.
    pub scale: (f64, f64),
    /// Range of the crop's aspect ratio (width / height).
    pub ratio: (f64, f64),
    /// Per-channel mean.
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    pub std: [f32; 3],
    /// Decode JPEGs at the reduced DCT scale the crop allows ([`decode_scale`]); on by default. Off,
    /// every JPEG is decoded in full: the same crops, pixels close to the scaled ones (mean |Δ| about
    /// 1 level of 255, docs/perf.md).
    pub scaled_decode: bool,
}

/// The DCT scale denominator (1, 2, 4 or 8) a JPEG can be decoded at for `crop` to be resized to
/// `size`: the largest that keeps both sides of the crop at or above `size` once divided by it.
/// 1 (a full decode) unless the crop is at least `2 · size` in both dimensions.
pub fn decode_scale(crop: &Crop, size: u32) -> u32 {
    [8, 4, 2].into_iter().find(|&d| crop.width / d >= size && crop.height / d >= size).unwrap_or(1)
}

thread_local! {
    /// `fast_image_resize` keeps scratch buffers in its resizer; one per decode thread.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
    /// Decoded JPEG pixels, reused by each decode thread.
    static JPEG_PIXELS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl TrainTransform {
    /// open_clip's training transform at `image_size`, OpenAI's statistics.
    pub fn open_clip(image_size: u32) -> Self {
        Self::with_stats(image_size, OPENAI_MEAN, OPENAI_STD)
    }

    /// open_clip's training transform at `image_size` with the weights' statistics (a
    /// [`PreprocessConfig`](crate::PreprocessConfig)'s `mean` and `std`, as open_clip's training
    /// transform takes them from the pretrained tag).
    pub fn with_stats(image_size: u32, mean: [f32; 3], std: [f32; 3]) -> Self {
        Self { image_size, scale: (0.9, 1.0), ratio: (3.0 / 4.0, 4.0 / 3.0), mean, std, scaled_decode: true }
    }

    /// Checks the size is at least 1 and the statistics usable (finite, std above 0).
    pub fn validate(&self) -> Result<()> {
        validate_transform(self.image_size, &self.mean, &self.std)
    }

    /// torchvision's `RandomResizedCrop.get_params`: ten tries at a random area and log-uniform
    /// aspect ratio that fits, else the centre crop with the ratio clamped to the range.
    pub fn crop(&self, width: u32, height: u32, rng: &mut impl Rng) -> Crop {
        let area = f64::from(width) * f64::from(height);
        let (log_lo, log_hi) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * rng.random_range(self.scale.0..=self.scale.1);
            let aspect = rng.random_range(log_lo..=log_hi).exp();
            let w = (target * aspect).sqrt().round() as u32;
            let h = (target / aspect).sqrt().round() as u32;
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return Crop { top, left, height: h, width: w };
            }
        }
        let in_ratio = f64::from(width) / f64::from(height);
        let (w, h) = if in_ratio < self.ratio.0 {
            (width, (f64::from(width) / self.ratio.0).round() as u32)
        } else if in_ratio > self.ratio.1 {
            ((f64::from(height) * self.ratio.1).round() as u32, height)
        } else {
            (width, height)
        };
        Crop { top: (height - h) / 2, left: (width - w) / 2, height: h, width: w }
    }

    /// The model input `[3, size, size]` for one image, with the crop drawn from `rng`.
    pub fn apply(&self, image: &RgbImage, rng: &mut impl Rng) -> Result<Vec<f32>> {
        Ok(normalise_chw(&self.crop_rgb(image, rng)?, &self.mean, &self.std))
    }

    /// The cropped and resized 8-bit image, `[size, size, 3]` row-major: [`TrainTransform::apply`]
    /// before normalisation (the loader normalises straight into the batch tensor).
    pub fn crop_rgb(&self, image: &RgbImage, rng: &mut impl Rng) -> Result<Vec<u8>> {
        self.crop_pixels(image.width, image.height, &image.pixels, rng)
    }

    /// [`TrainTransform::crop_rgb`] of encoded bytes. For a JPEG the crop is drawn from its header
    /// first (the same draw as for its decoded pixels); then it is decoded by libjpeg-turbo at
    /// [`decode_scale`]'s reduced size ([`TrainTransform::scaled_decode`] on) or in full, into a
    /// per-thread buffer; what libjpeg-turbo refuses or cannot give as RGB goes to zune-jpeg in full.
    pub fn crop_encoded(&self, bytes: &[u8], rng: &mut impl Rng) -> Result<Vec<u8>> {
        if !is_jpeg(bytes) {
            return self.crop_rgb(&decode_rgb(bytes)?, rng);
        }
        contain_panics(|| {
            let mut decoder = jpeg_decoder_for(bytes);
            let (width, height) = jpeg_headers(&mut decoder)?;
            let crop = self.crop(width, height, rng);
            let scale = if self.scaled_decode { decode_scale(&crop, self.image_size) } else { 1 };
            JPEG_PIXELS.with_borrow_mut(|buffer| {
                // A file libjpeg-turbo refuses is decoded in full by zune-jpeg, so that only what
                // zune-jpeg refuses is skipped, with or without scaled decoding.
                if let Ok(Some(dims)) = libjpeg::decode_into(bytes, scale, buffer) {
                    if dims != (width.div_ceil(scale), height.div_ceil(scale)) {
                        return Err(Error::Decode(format!("JPEG decoders disagree: {width}x{height} at 1/{scale} gave {dims:?}")));
                    }
                    // The scaled image is `ceil(side / scale)` a side: the crop box divided by the
                    // scale lies inside it, and its sides are at least `image_size` (`decode_scale`).
                    let d = f64::from(scale);
                    let scaled = (f64::from(crop.left) / d, f64::from(crop.top) / d, f64::from(crop.width) / d, f64::from(crop.height) / d);
                    return self.resize_window(dims.0, dims.1, &buffer[..dims.0 as usize * dims.1 as usize * 3], scaled);
                }
                decode_jpeg_body(decoder, width, height, buffer)?;
                let window = (f64::from(crop.left), f64::from(crop.top), f64::from(crop.width), f64::from(crop.height));
                self.resize_window(width, height, &buffer[..width as usize * height as usize * 3], window)
            })
        })
    }

    fn crop_pixels(&self, width: u32, height: u32, pixels: &[u8], rng: &mut impl Rng) -> Result<Vec<u8>> {
        let crop = self.crop(width, height, rng);
        let window = (f64::from(crop.left), f64::from(crop.top), f64::from(crop.width), f64::from(crop.height));
        self.resize_window(width, height, pixels, window)
    }

    /// Resizes the window `(left, top, width, height)` of the image to the output size.
    fn resize_window(&self, width: u32, height: u32, pixels: &[u8], (left, top, w, h): (f64, f64, f64, f64)) -> Result<Vec<u8>> {
        let source = ImageRef::new(width, height, pixels, PixelType::U8x3)
            .map_err(|e| Error::Decode(format!("bad pixel buffer: {e}")))?;
        let mut target = Image::new(self.image_size, self.image_size, PixelType::U8x3);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom)).crop(left, top, w, h);
        RESIZER
            .with_borrow_mut(|resizer| resizer.resize(&source, &mut target, &options))
            .map_err(|e| Error::Decode(format!("resize failed: {e}")))?;
        Ok(target.into_vec())
    }
}

/// `ToTensor` + `Normalize` on interleaved RGB bytes: channel-major floats.
pub(crate) fn normalise_chw(rgb: &[u8], mean: &[f32; 3], std: &[f32; 3]) -> Vec<f32> {
    let mut out = vec![0f32; rgb.len()];
    normalise_into(rgb, mean, std, &mut out);
    out
}

/// [`normalise_chw`] into `out` (as long as `rgb`).
pub(crate) fn normalise_into(rgb: &[u8], mean: &[f32; 3], std: &[f32; 3], out: &mut [f32]) {
    let plane = rgb.len() / 3;
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(px[c]) / 255.0 - mean[c]) / std[c];
        }
    }
}

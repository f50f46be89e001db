//! PIL's resampler (`libImaging/Resample.c`), reimplemented: separable convolution with
//! coefficients normalised in floating point, then rounded to 22-bit fixed point; the horizontal
//! pass runs first and is rounded to 8 bits before the vertical one. Reproducing this arithmetic,
//! not just the filter, is what makes the output equal to PIL's to the last bit. The filters are
//! PIL's bicubic (a = -0.5, support 2) and bilinear (triangle, support 1), both through the same
//! `precompute_coeffs`; nearest neighbour (what PIL forces for palette images) is its
//! `ImagingScaleAffine`, positions accumulated step by step as there.

/// Fractional bits of the fixed-point coefficients: 32 - 8 (pixel) - 2 (overshoot headroom).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// A convolution filter of PIL's resampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    /// `bicubic_filter` (a = -0.5), support 2.
    Bicubic,
    /// `bilinear_filter` (triangle), support 1.
    Bilinear,
}

impl Filter {
    /// The kernel's half-width at scale 1.
    fn support(self) -> f64 {
        match self {
            Self::Bicubic => 2.0,
            Self::Bilinear => 1.0,
        }
    }

    /// The kernel at `x`.
    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Self::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Self::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
        }
    }
}

/// For each output position: the first input index and the fixed-point weights.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    weights: Vec<Vec<i32>>,
}

/// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole input range.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    // PIL multiplies by the reciprocal (`ss`); dividing would differ in the last bit at times.
    let ss = 1.0 / filter_scale;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let raw: Vec<f64> = (0..xmax).map(|x| filter.weight(((x + xmin) as f64 - center + 0.5) * ss)).collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * f64::from(1u32 << PRECISION_BITS);
                (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
            })
            .collect();
        bounds.push((xmin, xmax));
        weights.push(fixed);
    }
    Coefficients { bounds, weights }
}

/// PIL's `clip8`: an arithmetic shift, then clamping to a byte.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resize of an interleaved 8-bit image with `channels` channels, as PIL's
/// `Image.resize(size, filter)` on a full-image box.
pub(crate) fn resize_convolution(
    src: &[u8],
    (width, height): (usize, usize),
    channels: usize,
    (out_w, out_h): (usize, usize),
    filter: Filter,
) -> Vec<u8> {
    let round = 1i32 << (PRECISION_BITS - 1);
    let horizontal = if out_w != width {
        let c = coefficients(width, out_w, filter);
        let mut out = vec![0u8; out_w * height * channels];
        for y in 0..height {
            let row = &src[y * width * channels..(y + 1) * width * channels];
            for xx in 0..out_w {
                let (xmin, xmax) = c.bounds[xx];
                let k = &c.weights[xx];
                for ch in 0..channels {
                    let mut acc = round;
                    for x in 0..xmax {
                        acc += i32::from(row[(x + xmin) * channels + ch]) * k[x];
                    }
                    out[(y * out_w + xx) * channels + ch] = clip8(acc);
                }
            }
        }
        out
    } else {
        src.to_vec()
    };
    if out_h == height {
        return horizontal;
    }
    let c = coefficients(height, out_h, filter);
    let mut out = vec![0u8; out_w * out_h * channels];
    for yy in 0..out_h {
        let (ymin, ymax) = c.bounds[yy];
        let k = &c.weights[yy];
        for x in 0..out_w * channels {
            let mut acc = round;
            for y in 0..ymax {
                acc += i32::from(horizontal[(y + ymin) * out_w * channels + x]) * k[y];
            }
            out[yy * out_w * channels + x] = clip8(acc);
        }
    }
    out
}

/// Nearest-neighbour resize, as PIL applies to palette images whatever filter is asked for
/// (`ImagingScaleAffine`): each output pixel takes the input pixel under its centre, the centres
/// found by adding the step to the previous one, as PIL does. A position that rounding pushes
/// outside the image keeps `fill` (PIL's zeroed output, palette index 0).
pub(crate) fn resize_nearest(
    src: &[u8],
    (width, height): (usize, usize),
    channels: usize,
    (out_w, out_h): (usize, usize),
    fill: &[u8],
) -> Vec<u8> {
    // PIL's COORD: -1 below zero, else truncation.
    let positions = |step: f64, count: usize, limit: usize| -> Vec<Option<usize>> {
        let mut at = step * 0.5;
        (0..count)
            .map(|_| {
                let i = if at < 0.0 { None } else { Some(at as usize).filter(|&i| i < limit) };
                at += step;
                i
            })
            .collect()
    };
    let xs = positions(width as f64 / out_w as f64, out_w, width);
    let ys = positions(height as f64 / out_h as f64, out_h, height);
    let mut out = Vec::with_capacity(out_w * out_h * channels);
    for y in &ys {
        for x in &xs {
            match (y, x) {
                (Some(y), Some(x)) => out.extend_from_slice(&src[(y * width + x) * channels..(y * width + x + 1) * channels]),
                _ => out.extend_from_slice(fill),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_is_a_copy_and_flat_images_stay_flat() {
        let src: Vec<u8> = (0..48).map(|i| (i * 5) as u8).collect();
        let flat = vec![77u8; 10 * 7 * 3];
        for filter in [Filter::Bicubic, Filter::Bilinear] {
            assert_eq!(resize_convolution(&src, (4, 4), 3, (4, 4), filter), src);
            assert!(resize_convolution(&flat, (10, 7), 3, (4, 3), filter).iter().all(|&v| v == 77));
            assert!(resize_convolution(&flat, (10, 7), 3, (23, 17), filter).iter().all(|&v| v == 77));
        }
        assert_eq!(resize_nearest(&src, (4, 4), 3, (4, 4), &[0; 3]), src);
    }
}

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

/// For each output position: the first input index and the fixed-point weights from there.
struct Coefficients {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole input range.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    // PIL multiplies by the reciprocal (`ss`); dividing would differ in the last bit at times.
    let ss = 1.0 / filter_scale;
    let mut first = Vec::with_capacity(out_size);
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
        first.push(xmin);
        weights.push(fixed);
    }
    Coefficients { first, weights }
}

/// PIL's `clip8`: an arithmetic shift, then clamping to a byte.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resize of an interleaved 8-bit image with `channels` (1 to 4) channels, as PIL's
/// `Image.resize(size, filter)` on a full-image box.
///
/// The sums are PIL's, term for term; only the loop order differs (all of a pixel's channels
/// per tap; a whole row per tap in the vertical pass, which vectorises). Integer sums do not
/// depend on the order, and none overflows: the weights' magnitudes sum to under 1.3 · 2²²,
/// times 255 is under 2³¹.
pub(crate) fn resize_convolution(
    src: &[u8],
    (width, height): (usize, usize),
    channels: usize,
    (out_w, out_h): (usize, usize),
    filter: Filter,
) -> Vec<u8> {
    let horizontal = if out_w == width {
        src.to_vec()
    } else {
        let c = coefficients(width, out_w, filter);
        match channels {
            1 => horizontal_pass::<1>(src, width, height, &c),
            2 => horizontal_pass::<2>(src, width, height, &c),
            3 => horizontal_pass::<3>(src, width, height, &c),
            4 => horizontal_pass::<4>(src, width, height, &c),
            _ => panic!("resize_convolution: {channels} channels"),
        }
    };
    if out_h == height {
        return horizontal;
    }
    let c = coefficients(height, out_h, filter);
    let row = out_w * channels;
    let mut out = vec![0u8; row * out_h];
    let mut acc = vec![0i32; row];
    for (yy, out_row) in out.chunks_exact_mut(row).enumerate() {
        let ymin = c.first[yy];
        acc.fill(ROUND);
        for (y, &k) in c.weights[yy].iter().enumerate() {
            let input = &horizontal[(ymin + y) * row..][..row];
            for (a, &v) in acc.iter_mut().zip(input) {
                *a += i32::from(v) * k;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// PIL's rounding term: half of the fixed point's unit.
const ROUND: i32 = 1 << (PRECISION_BITS - 1);

/// The horizontal pass over every row, `C` channels per pixel.
fn horizontal_pass<const C: usize>(src: &[u8], width: usize, height: usize, c: &Coefficients) -> Vec<u8> {
    let out_w = c.first.len();
    let mut out = vec![0u8; out_w * height * C];
    for (row, out_row) in src.chunks_exact(width * C).take(height).zip(out.chunks_exact_mut(out_w * C)) {
        for ((&xmin, k), pixel) in c.first.iter().zip(&c.weights).zip(out_row.chunks_exact_mut(C)) {
            let mut acc = [ROUND; C];
            for (input, &k) in row[xmin * C..].chunks_exact(C).zip(k) {
                for ch in 0..C {
                    acc[ch] += i32::from(input[ch]) * k;
                }
            }
            for ch in 0..C {
                pixel[ch] = clip8(acc[ch]);
            }
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

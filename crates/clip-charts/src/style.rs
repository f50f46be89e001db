//! What every chart shares: the bundled font, the palette, tick labels, the RGB buffer → PNG step.

use std::sync::OnceLock;

use plotters::prelude::*;

use crate::{Error, Result};

/// DejaVu Sans 2.37 cut to Latin-1 and a few symbols (`fonts/subset.py`; licence in `fonts/`).
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// The family name the charts ask for.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the bundled font under [`FAMILY`] once per process.
pub(crate) fn font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(Error::Draw("the bundled font does not parse".into())) }
}

/// Distinguishable colours (Tableau 10), cycled.
pub(crate) fn colour(i: usize) -> RGBColor {
    const PALETTE: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// `c` mixed with white: `amount` 0 is `c`, 1 is white.
pub(crate) fn lighter(c: RGBColor, amount: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * amount).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// A tick value, short: `0`, `12`, `0.25`, `3.5e-4`, `1.2e5`.
pub(crate) fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-2..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// A range covering `values` with a margin, never empty.
pub(crate) fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 { span * 0.08 } else { lo.abs().max(1e-3) * 0.1 };
    (lo - pad, hi + pad)
}

/// Turns a plotters error into ours.
pub(crate) fn draw_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::Draw(format!("{e:?}"))
}

/// Encodes a `width × height` RGB buffer as PNG.
pub(crate) fn png(buffer: Vec<u8>, width: u32, height: u32) -> Result<Vec<u8>> {
    let image = image::RgbImage::from_raw(width, height, buffer).ok_or_else(|| Error::Draw("buffer size".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).map_err(|e| Error::Draw(e.to_string()))?;
    Ok(out.into_inner())
}

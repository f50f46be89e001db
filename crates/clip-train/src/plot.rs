//! The loss curve as a PNG: a polyline on light axes, drawn pixel by pixel (no plotting
//! dependency for one chart).

use image::{Rgb, RgbImage};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
const MARGIN: u32 = 30;

fn line(image: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), colour: Rgb<u8>) {
    let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
        if x >= 0.0 && y >= 0.0 && (x as u32) < WIDTH && (y as u32) < HEIGHT {
            image.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// Encodes a PNG of `points` (step, loss): steps left to right, loss bottom (0) to top (max).
pub(crate) fn loss_curve(points: &[(u64, f64)]) -> Vec<u8> {
    let mut image = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
    let (left, right, top, bottom) = (MARGIN as f64, (WIDTH - MARGIN) as f64, MARGIN as f64, (HEIGHT - MARGIN) as f64);
    let grey = Rgb([170, 170, 170]);
    line(&mut image, (left, bottom), (right, bottom), grey);
    line(&mut image, (left, top), (left, bottom), grey);
    let finite: Vec<(u64, f64)> = points.iter().copied().filter(|(_, l)| l.is_finite()).collect();
    if let (Some(first), Some(last)) = (finite.first(), finite.last()) {
        let max = finite.iter().map(|p| p.1).fold(f64::MIN, f64::max).max(1e-9);
        let span = (last.0 - first.0).max(1) as f64;
        for q in 1..4 {
            let y = bottom - (bottom - top) * f64::from(q) / 4.0;
            line(&mut image, (left, y), (right, y), Rgb([235, 235, 235]));
        }
        let at = |(step, loss): (u64, f64)| {
            (left + (right - left) * (step - first.0) as f64 / span, bottom - (bottom - top) * (loss / max).clamp(0.0, 1.0))
        };
        for pair in finite.windows(2) {
            line(&mut image, at(pair[0]), at(pair[1]), Rgb([30, 90, 200]));
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("PNG encoding of an in-memory image cannot fail");
    out.into_inner()
}

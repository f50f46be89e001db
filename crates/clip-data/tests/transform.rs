use clip_data::SourceImage;
use clip_data::transform::{RgbImage, TrainTransform, decode_jpeg_scaled, decode_rgb, decode_scale};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::support::jpeg;

#[test]
fn crops_follow_torchvision_random_resized_crop() {
    let t = TrainTransform::open_clip(224);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (w, h) in [(640u32, 480u32), (300, 1000), (224, 224), (1, 1), (4000, 50)] {
        for _ in 0..200 {
            let c = t.crop(w, h, &mut rng);
            assert!(c.width >= 1 && c.height >= 1 && c.left + c.width <= w && c.top + c.height <= h, "{c:?} in {w}x{h}");
            let share = f64::from(c.width * c.height) / f64::from(w * h);
            let ratio = f64::from(c.width) / f64::from(c.height);
            // Either a sampled crop (area share and aspect in range, up to rounding) or the
            // clamped centre crop torchvision falls back to.
            let sampled = (0.85..=1.0).contains(&share) && (0.7..=1.4).contains(&ratio);
            let centred = c.left == (w - c.width) / 2 && c.top == (h - c.height) / 2;
            assert!(sampled || centred, "{c:?} in {w}x{h}");
        }
    }
    // A very wide image cannot hold a 0.9-area crop of ratio ≤ 4/3: centre crop, ratio clamped.
    let c = t.crop(4000, 50, &mut rng);
    assert_eq!((c.width, c.height, c.left), (67, 50, (4000 - 67) / 2));
}

#[test]
fn the_fast_resize_matches_pils_bicubic() {
    // Full-image crop of a decoded photo: compare the SIMD path with the exact PIL port used for
    // evaluation (resize to the target without cropping, square input).
    let bytes = crate::support::encoded(300, 300, 5, image::ImageFormat::Png);
    let source = SourceImage::decode(&bytes).unwrap();
    let exact = source.resize_shorter(64).to_rgb();
    let t = TrainTransform { scale: (1.0, 1.0), ratio: (1.0, 1.0), ..TrainTransform::open_clip(64) };
    let fast = t.crop_rgb(&RgbImage::from(&source), &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let diffs: Vec<i32> = exact.iter().zip(&fast).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).collect();
    let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
    // Fixed-point rounding differs at the pattern's sharpest edges only.
    assert!(mean < 0.5 && *diffs.iter().max().unwrap() <= 8, "mean {mean}, max {:?}", diffs.iter().max());
}

#[test]
fn jpeg_fast_path_decodes_like_the_general_decoder() {
    let bytes = jpeg(9);
    let fast = decode_rgb(&bytes).unwrap();
    let general = SourceImage::decode(&bytes).unwrap();
    assert_eq!((fast.width, fast.height), (general.width, general.height));
    let max = fast.pixels.iter().zip(general.to_rgb()).map(|(a, b)| (i32::from(*a) - i32::from(b)).abs()).max().unwrap();
    assert!(max <= 2, "{max}");
    assert!(decode_rgb(b"\xFF\xD8\xFF garbage").is_err());
    // A JPEG cut short is an error, as in PIL (not an image padded with grey).
    let photo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/images/rocket.jpg")).unwrap();
    assert!(decode_rgb(&photo).is_ok());
    assert!(decode_rgb(&photo[..photo.len() / 3]).is_err());
}

#[test]
fn decode_scale_is_the_largest_that_keeps_the_crop_at_or_above_the_output_size() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut seen = [0usize; 9];
    for _ in 0..20_000 {
        let size = rng.random_range(1..=512u32);
        let t = TrainTransform::open_clip(size);
        let (w, h) = (rng.random_range(1..=6000u32), rng.random_range(1..=6000u32));
        let c = t.crop(w, h, &mut rng);
        let d = decode_scale(&c, size);
        seen[d as usize] += 1;
        assert!([1, 2, 4, 8].contains(&d), "{d}");
        // Never below the output size once scaled, in either dimension...
        assert!(c.width / d >= size && c.height / d >= size || d == 1, "{c:?} at 1/{d} for {size}");
        // ... scaled only when the crop is at least twice the output size in both...
        assert_eq!(d > 1, c.width >= 2 * size && c.height >= 2 * size, "{c:?} at 1/{d} for {size}");
        // ... and no larger scale would do.
        assert!(d == 8 || c.width / (2 * d) < size || c.height / (2 * d) < size, "{c:?} at 1/{d} for {size}");
        // The scaled image holds the scaled crop box.
        let (sw, sh) = (w.div_ceil(d), h.div_ceil(d));
        assert!(f64::from(c.left + c.width) / f64::from(d) <= f64::from(sw) && f64::from(c.top + c.height) / f64::from(d) <= f64::from(sh));
    }
    assert!(seen[1] > 0 && seen[2] > 0 && seen[4] > 0 && seen[8] > 0, "{seen:?}");
}

/// A photo mix: the fixtures' photos rescaled to long sides of 300–1000 px and saved as JPEGs at
/// qualities 70–95, colour and grey (crops of 112 px from them: the scales of 224 px crops of
/// photos twice their size, at a debug build's speed).
fn photo_mix() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/images/");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut out = Vec::new();
    for name in ["chelsea.png", "coffee.png", "rocket.jpg", "camera.png"] {
        let source = image::open(format!("{dir}{name}")).unwrap();
        for _ in 0..3 {
            let long = rng.random_range(300..=1000u32);
            let (w, h) = (source.width(), source.height());
            let scale = f64::from(long) / f64::from(w.max(h));
            let resized = source.resize_exact(
                (f64::from(w) * scale).round() as u32,
                (f64::from(h) * scale).round() as u32,
                image::imageops::FilterType::CatmullRom,
            );
            let resized = if name == "camera.png" { image::DynamicImage::ImageLuma8(resized.to_luma8()) } else { image::DynamicImage::ImageRgb8(resized.to_rgb8()) };
            let mut bytes = Vec::new();
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, rng.random_range(70..=95));
            resized.write_with_encoder(encoder).unwrap();
            out.push(bytes);
        }
    }
    out
}

#[test]
fn scaled_decoding_stays_at_or_above_the_output_size_and_close_to_the_full_decode() {
    let photos = photo_mix();
    let size = 112;
    let full = TrainTransform { scaled_decode: false, ..TrainTransform::open_clip(size) };
    let scaled = TrainTransform::open_clip(size);
    let (mut sum, mut count, mut scaled_crops) = (0u64, 0u64, 0);
    for (i, bytes) in photos.iter().enumerate() {
        let source = decode_rgb(bytes).unwrap();
        for k in 0..3 {
            let seed = (i * 3 + k) as u64;
            let crop = full.crop(source.width, source.height, &mut ChaCha8Rng::seed_from_u64(seed));
            let d = decode_scale(&crop, size);
            let image = decode_jpeg_scaled(bytes, d).unwrap().unwrap();
            assert_eq!((image.width, image.height), (source.width.div_ceil(d), source.height.div_ceil(d)));
            assert!(crop.width / d >= size && crop.height / d >= size && image.width >= size && image.height >= size);
            let a = full.crop_encoded(bytes, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            let b = scaled.crop_encoded(bytes, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            let n = (size * size * 3) as usize;
            assert_eq!((a.len(), b.len()), (n, n));
            let delta: u64 = a.iter().zip(&b).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
            let mean = delta as f64 / n as f64;
            if d == 1 {
                assert_eq!(delta, 0, "photo {i} crop {k}: a full decode either way");
                continue;
            }
            assert!(mean < 3.0, "photo {i} crop {k} at 1/{d}: mean |Δ| {mean}");
            scaled_crops += 1;
            sum += delta;
            count += n as u64;
        }
    }
    assert!(scaled_crops >= 8, "only {scaled_crops} of {} crops were decoded scaled", photos.len() * 3);
    let mean = sum as f64 / count as f64;
    assert!(mean < 1.5, "mean |Δ| {mean} over the {scaled_crops} scaled crops");
}

#[test]
fn scaled_decoding_refuses_cut_files_and_falls_back_where_it_cannot_give_rgb() {
    let t = TrainTransform::open_clip(32);
    let big = &photo_mix()[1];
    assert!(t.crop_encoded(big, &mut ChaCha8Rng::seed_from_u64(0)).is_ok());
    assert!(t.crop_encoded(&big[..big.len() / 3], &mut ChaCha8Rng::seed_from_u64(0)).is_err());
    // libjpeg only warns about a file cut short, and pads it with grey: an error here, at any scale.
    for scale in [1, 2, 4, 8] {
        assert!(decode_jpeg_scaled(&big[..big.len() / 3], scale).is_err(), "1/{scale}");
        assert!(decode_jpeg_scaled(&big[..big.len() - 2], scale).is_err(), "1/{scale} without EOI");
    }
    // Corrupt entropy-coded data (a marker inside the scan) is refused too, not decoded around.
    let mut corrupt = big.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle..middle + 2].copy_from_slice(&[0xFF, 0xD0]);
    assert!(decode_jpeg_scaled(&corrupt, 2).is_err());
    assert!(decode_jpeg_scaled(b"\xFF\xD8\xFF garbage", 1).is_err());
    assert!(decode_jpeg_scaled(big, 3).is_err());
    // CMYK: the reduced decoder gives no RGB, so the full decode is used, pixel for pixel.
    let cmyk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/images/chelsea_cmyk.jpg")).unwrap();
    assert!(decode_jpeg_scaled(&cmyk, 2).unwrap().is_none());
    let full = TrainTransform { scaled_decode: false, ..t.clone() };
    let (a, b) = (t.crop_encoded(&cmyk, &mut ChaCha8Rng::seed_from_u64(5)).unwrap(), full.crop_encoded(&cmyk, &mut ChaCha8Rng::seed_from_u64(5)).unwrap());
    assert_eq!(a, b);
}

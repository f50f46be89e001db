use clip_data::SourceImage;
use clip_data::transform::{RgbImage, TrainTransform, decode_rgb};
use rand::SeedableRng;
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

//! Measures the training transform's scaled JPEG decoding on a folder of JPEGs: the time per
//! image of the raw decoders (zune-jpeg in full, libjpeg-turbo in full and at the DCT scale the
//! crop allows) and of the whole crop (`TrainTransform::crop_encoded` with scaled decoding off and
//! on, the same crops), on one thread, overall and by the DCT scale each crop allows; and the mean
//! |Δ| between the two crops' pixels where the decode was scaled.
//!
//!     cargo run --release -p clip-data --example scaled_decode -- DIR [--size 224] [--passes 3]

#![allow(clippy::print_stdout)] // A measurement's report is its output.

use std::time::Instant;

use clip_data::transform::{TrainTransform, decode_jpeg_scaled, decode_rgb, decode_scale};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("usage: scaled_decode DIR [--size N] [--passes N]");
    let flag = |name: &str, default: u32| {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map_or(default, |v| v.parse().expect("a number"))
    };
    let (size, passes) = (flag("--size", 224), flag("--passes", 3));
    let mut paths: Vec<_> = std::fs::read_dir(dir).expect("a folder").map(|e| e.expect("an entry").path()).collect();
    paths.sort();
    let files: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).expect("readable")).collect();
    run(&files, size, passes);
}

fn run(files: &[Vec<u8>], size: u32, passes: u32) {
    let full = TrainTransform { scaled_decode: false, ..TrainTransform::open_clip(size) };
    let scaled = TrainTransform::open_clip(size);
    // Per image: the crop each transform draws from seed i, and the scale it allows.
    let scales: Vec<u32> = files
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let image = decode_rgb(bytes).expect("a JPEG");
            decode_scale(&full.crop(image.width, image.height, &mut ChaCha8Rng::seed_from_u64(i as u64)), size)
        })
        .collect();
    let best = |f: &dyn Fn(usize, &[u8])| {
        (0..passes)
            .map(|_| {
                let start = Instant::now();
                files.iter().enumerate().for_each(|(i, b)| f(i, b));
                start.elapsed().as_secs_f64() * 1e3 / files.len() as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    let zune = best(&|_, b| {
        decode_rgb(b).expect("decodes");
    });
    let libjpeg = |scale_of: &dyn Fn(usize) -> u32| {
        best(&|i, b| {
            decode_jpeg_scaled(b, scale_of(i)).expect("decodes").expect("RGB");
        })
    };
    let tj_full = libjpeg(&|_| 1);
    let tj_scaled = libjpeg(&|i| scales[i]);
    let crop = |t: &TrainTransform, i: usize, b: &[u8]| {
        t.crop_encoded(b, &mut ChaCha8Rng::seed_from_u64(i as u64)).expect("crops");
    };
    let crop_full = best(&|i, b| crop(&full, i, b));
    let crop_scaled = best(&|i, b| crop(&scaled, i, b));
    let (mut sum, mut n, mut worst) = (0u64, 0u64, 0f64);
    for (i, b) in files.iter().enumerate() {
        let a = full.crop_encoded(b, &mut ChaCha8Rng::seed_from_u64(i as u64)).expect("crops");
        let c = scaled.crop_encoded(b, &mut ChaCha8Rng::seed_from_u64(i as u64)).expect("crops");
        let d: u64 = a.iter().zip(&c).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
        worst = worst.max(d as f64 / a.len() as f64);
        if scales[i] > 1 {
            sum += d;
            n += a.len() as u64;
        }
    }
    // Per DCT scale: the best of `passes` for each image's crop, full and scaled decode.
    let mut by_scale = [(0f64, 0f64); 9];
    for (i, b) in files.iter().enumerate() {
        let one = |t: &TrainTransform| {
            (0..passes)
                .map(|_| {
                    let start = Instant::now();
                    crop(t, i, b);
                    start.elapsed().as_secs_f64() * 1e3
                })
                .fold(f64::INFINITY, f64::min)
        };
        let slot = &mut by_scale[scales[i] as usize];
        slot.0 += one(&full);
        slot.1 += one(&scaled);
    }
    let count = |s: u32| scales.iter().filter(|&&v| v == s).count();
    let per_scale: Vec<String> = [1u32, 2, 4, 8]
        .iter()
        .filter(|&&s| count(s) > 0)
        .map(|&s| {
            let (f, c) = by_scale[s as usize];
            format!("\"{s}\": [{:.3}, {:.3}]", f / count(s) as f64, c / count(s) as f64)
        })
        .collect();
    println!("{{\"crop_ms_full_vs_scaled_by_scale\": {{{}}}}}", per_scale.join(", "));
    println!(
        "{{\"images\": {}, \"size\": {size}, \"scales\": {{\"1\": {}, \"2\": {}, \"4\": {}, \"8\": {}}}, \
         \"ms_per_image\": {{\"zune_full\": {zune:.3}, \"libjpeg_full\": {tj_full:.3}, \"libjpeg_scaled\": {tj_scaled:.3}, \
         \"crop_full_decode\": {crop_full:.3}, \"crop_scaled_decode\": {crop_scaled:.3}}}, \
         \"mean_abs_delta_of_scaled_crops\": {:.3}, \"worst_image_mean_abs_delta\": {worst:.3}}}",
        files.len(),
        count(1),
        count(2),
        count(4),
        count(8),
        sum as f64 / n.max(1) as f64
    );
}

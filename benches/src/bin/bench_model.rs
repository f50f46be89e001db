//! Times one CLIP encoder on random inputs and reports the median and the process's peak RSS as
//! JSON, for `benches/scripts/bench_embed.py`, which runs open_clip the same way beside it.
//!
//! ```text
//! usage: bench_model MODEL image|text BATCH ITERS THREADS [DEVICE [PRECISION]]
//!   MODEL: a preset, or an open_clip model-config .json file
//!   DEVICE: cpu (default), cuda, auto; PRECISION: fp32 (default), bf16 or fp16 autocast
//! ```

#![allow(clippy::print_stdout)] // A benchmark's report is its output.

use std::time::Instant;

use clip_alloc as _; // jemalloc under every allocation, as `clip` runs.
use clip_tensor::precision::autocast;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, what, batch, iters, threads, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: bench_model MODEL image|text BATCH ITERS THREADS [DEVICE [PRECISION]]");
    };
    let (batch, iters, threads): (i64, usize, i32) = (batch.parse()?, iters.parse()?, threads.parse()?);
    let (device, precision) = clip_benches::device_and_precision(rest)?;
    let (config, _vs, clip) = clip_benches::random_model(model, threads, device)?;
    let _guard = tch::no_grad_guard();
    let (images, ids) = clip_benches::random_inputs(&config, batch, device);
    let input = match what.as_str() {
        "image" => images,
        "text" => ids,
        other => anyhow::bail!("unknown workload {other}"),
    };
    let run = || {
        let _features = autocast(device, precision, || if what == "image" { clip.encode_image(&input) } else { clip.encode_text(&input) })?;
        clip_benches::synchronize(device);
        anyhow::Ok(())
    };
    run()?; // Warm-up.
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let peak_kb = clip_benches::peak_rss_kb();
    println!("{{\"median_s\": {}, \"peak_rss_kb\": {peak_kb}}}", times[times.len() / 2]);
    Ok(())
}

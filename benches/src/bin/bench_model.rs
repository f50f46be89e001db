//! Times one CLIP encoder on random inputs and reports the median and the process's peak RSS as
//! JSON, for `benches/scripts/bench_embed.py`, which runs open_clip the same way beside it.
//!
//! usage: bench_model MODEL image|text BATCH ITERS THREADS

#![allow(clippy::print_stdout)] // A benchmark's report is its output.

use std::time::Instant;


fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, what, batch, iters, threads] = args.as_slice() else {
        anyhow::bail!("usage: bench_model MODEL image|text BATCH ITERS THREADS");
    };
    let (batch, iters, threads): (i64, usize, i32) = (batch.parse()?, iters.parse()?, threads.parse()?);
    let (config, _vs, clip) = clip_benches::random_model(model, threads)?;
    let _guard = tch::no_grad_guard();
    let (images, ids) = clip_benches::random_inputs(&config, batch);
    let input = match what.as_str() {
        "image" => images,
        "text" => ids,
        other => anyhow::bail!("unknown workload {other}"),
    };
    let run = || if what == "image" { clip.encode_image(&input) } else { clip.encode_text(&input) };
    let _ = run(); // Warm-up.
    let mut times: Vec<f64> = (0..iters)
        .map(|_| {
            let start = Instant::now();
            let _ = run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let peak_kb = clip_benches::peak_rss_kb();
    println!("{{\"median_s\": {}, \"peak_rss_kb\": {peak_kb}}}", times[times.len() / 2]);
    Ok(())
}

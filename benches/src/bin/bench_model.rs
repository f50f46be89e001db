//! Times one CLIP encoder on random inputs and reports the median and the process's peak RSS as
//! JSON, for `benches/scripts/bench_embed.py`, which runs open_clip the same way beside it.
//!
//! usage: bench_model MODEL image|text BATCH ITERS THREADS

#![allow(clippy::print_stdout)] // A benchmark's report is its output.

use std::time::Instant;

use clip_model::{ClipConfig, ClipModel};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, what, batch, iters, threads] = args.as_slice() else {
        anyhow::bail!("usage: bench_model MODEL image|text BATCH ITERS THREADS");
    };
    let (batch, iters, threads): (i64, usize, i32) = (batch.parse()?, iters.parse()?, threads.parse()?);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let config = ClipConfig::named(model)?;
    let vs = VarStore::new(Device::Cpu);
    let clip = ClipModel::new(vs.root(), &config);
    let _guard = tch::no_grad_guard();
    let input = match what.as_str() {
        "image" => {
            let s = config.vision.image_size();
            Tensor::randn([batch, 3, s, s], (Kind::Float, Device::Cpu))
        }
        "text" => Tensor::randint(config.text.vocab_size, [batch, config.text.context_length], (Kind::Int64, Device::Cpu)),
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
    // SAFETY: getrusage fills a zeroed struct we own.
    let peak_kb = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage.ru_maxrss
    };
    println!("{{\"median_s\": {}, \"peak_rss_kb\": {peak_kb}}}", times[times.len() / 2]);
    Ok(())
}

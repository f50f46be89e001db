//! Times CLIP training steps on random inputs — forward, contrastive loss, backward, the trainer's
//! gradient-norm guard, AdamW (open_clip's groups), the logit-scale clamp — and reports the median
//! of each phase and the process's peak RSS as JSON, for `cargo xtask bench-compare`, which runs
//! open_clip's equivalent beside it (`benches/scripts/bench_step.py`).
//!
//! ```text
//! usage: bench_step [--patch-dropout P] [--grad-checkpointing] MODEL BATCH ITERS THREADS [DEVICE [PRECISION]]
//!          MODEL: a preset name; DEVICE: cpu (default), cuda, auto; PRECISION: fp32 (default),
//!          bf16 or fp16 autocast, as `clip train` runs it; --patch-dropout: each image keeps
//!          its class token and a fraction 1 − P of its patches, drawn every step as the trainer
//!          draws them (the draw is timed with the forward); --grad-checkpointing: each residual
//!          block (ResNet stage) keeps only its input and runs again in the backward, as
//!          `model.grad_checkpointing = true` trains
//!        bench_step --config MODEL   (print the preset in open_clip's JSON)
//! ```

#![allow(clippy::print_stdout)] // A benchmark's report is its output.

use std::collections::BTreeMap;
use std::time::Instant;

use clip_alloc as _; // jemalloc under every allocation, as `clip` runs.
use clip_model::ClipConfig;
use clip_train::config::OptimSection;
use clip_train::optim::AdamW;
use clip_tensor::precision::autocast;
use tch::{Kind, Tensor};

/// The phases of one step, in order.
const PHASES: [&str; 5] = ["forward", "loss", "backward", "grad_norm", "optimizer"];

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let patch_dropout: f64 = match args.iter().position(|a| a == "--patch-dropout") {
        Some(i) => {
            let p = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--patch-dropout takes a value"))?.parse()?;
            args.drain(i..i + 2);
            p
        }
        None => 0.0,
    };
    let grad_checkpointing = match args.iter().position(|a| a == "--grad-checkpointing") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    if let [flag, model] = args.as_slice()
        && flag == "--config"
    {
        println!("{}", ClipConfig::named(model)?.to_json());
        return Ok(());
    }
    let [model, batch, iters, threads, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: bench_step MODEL BATCH ITERS THREADS [DEVICE [PRECISION]] | bench_step --config MODEL");
    };
    let (batch, iters, threads): (i64, usize, i32) = (batch.parse()?, iters.parse()?, threads.parse()?);
    let (device, precision) = clip_benches::device_and_precision(rest)?;
    let (config, vs, mut clip) = clip_benches::random_model(model, threads, device)?;
    clip.set_training(true);
    clip.set_grad_checkpointing(grad_checkpointing);
    let params: BTreeMap<String, Tensor> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let mut optim = AdamW::new(params, &OptimSection::default())?;
    let (images, texts) = clip_benches::random_inputs(&config, batch, device);
    let patches = config.vision.patch_tokens().filter(|_| patch_dropout > 0.0);
    anyhow::ensure!(patch_dropout == 0.0 || patches.is_some(), "--patch-dropout: {model} has no patch tokens");
    let mut times: Vec<[f64; PHASES.len()]> = Vec::new();
    for i in 0..=iters {
        let mut phase = [0.0; PHASES.len()];
        let mut clock = Instant::now();
        let mut lap = |k: usize| {
            clip_benches::synchronize(device);
            phase[k] = clock.elapsed().as_secs_f64();
            clock = Instant::now();
        };
        optim.zero_grad();
        let seeds: Vec<u64> = (0..batch as u64).map(|s| s + i as u64 * batch as u64).collect();
        let kept = patches.map(|n| clip_model::patch_dropout::draw_kept(&seeds, n, patch_dropout).to_device(device));
        let (image, text, scale) = autocast(device, precision, || {
            let out = clip.forward_with(&images, &texts, kept.as_ref());
            (out.image_features.to_kind(Kind::Float), out.text_features.to_kind(Kind::Float), out.logit_scale.to_kind(Kind::Float))
        })?;
        lap(0);
        let loss = clip_loss::clip_loss(&image, &text, &scale);
        lap(1);
        loss.backward();
        lap(2);
        anyhow::ensure!(optim.grad_norm().is_finite(), "non-finite gradient");
        lap(3);
        optim.step(1e-4);
        let _guard = tch::no_grad_guard();
        let _ = clip.logit_scale().shallow_clone().clamp_(0.0, clip_loss::MAX_LOGIT_SCALE);
        lap(4);
        if i > 0 {
            times.push(phase); // The first step warms up.
        }
    }
    let median = |k: usize| {
        let mut v: Vec<f64> = times.iter().map(|t| t[k]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut totals: Vec<f64> = times.iter().map(|t| t.iter().sum()).collect();
    totals.sort_by(f64::total_cmp);
    let peak_kb = clip_benches::peak_rss_kb();
    let phases: Vec<String> = PHASES.iter().enumerate().map(|(k, name)| format!("\"{name}\": {}", median(k))).collect();
    let median = totals[totals.len() / 2];
    println!(
        "{{\"median_s\": {median}, \"samples_per_s\": {}, {}, \"peak_rss_kb\": {peak_kb}}}",
        batch as f64 / median,
        phases.join(", ")
    );
    Ok(())
}

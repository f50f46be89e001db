//! A zero-shot classifier and the linear probe on features of your own. Five classes, each with
//! a direction in a 64-d space: three "prompt" features per class near it (averaged into the
//! classifier's column, as open_clip's prompt ensemble is), and "image" features scattered around
//! it, half for training the probe, a quarter for its λ search, a quarter for the test.
//!
//!     cargo run --release -p clip-eval --example probe
#![allow(clippy::print_stdout)] // an example's output is its result

use clip_eval::linear_probe::{ProbeConfig, fit, search_lambda};
use clip_eval::metrics::topk_accuracy;
use clip_eval::zeroshot;
use clip_model::l2_normalize;
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), clip_eval::Error> {
    tch::manual_seed(0);
    let (classes, dim, per_class) = (5i64, 64i64, 80i64);
    let float = (Kind::Float, Device::Cpu);
    let directions = l2_normalize(&Tensor::randn([classes, dim], float));
    // The classifier: per class, the normalised mean of its normalised prompt features.
    let prompts = l2_normalize(&(directions.unsqueeze(1) + 0.5 * Tensor::randn([classes, 3, dim], float)));
    let classifier = l2_normalize(&prompts.mean_dim(1, false, Kind::Float)).tr(); // [dim, classes]
    // Images: n per class around its direction, labels 0..classes, shuffled.
    let labels = Tensor::arange(classes, (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(per_class, 0, None);
    let images = l2_normalize(&(directions.index_select(0, &labels) + 0.12 * Tensor::randn([classes * per_class, dim], float)));
    let order = Tensor::randperm(classes * per_class, (Kind::Int64, Device::Cpu));
    let (images, labels) = (images.index_select(0, &order), labels.index_select(0, &order));
    let split = |from: i64, len: i64| (images.narrow(0, from, len), labels.narrow(0, from, len));
    let n = classes * per_class;
    let (train, validation, test) = (split(0, n / 2), split(n / 2, n / 4), split(3 * n / 4, n / 4));

    let zero_shot = topk_accuracy(&zeroshot::logits(&test.0, &classifier), &test.1, 1).unwrap_or(f64::NAN);
    println!("zero-shot top-1 on {} test images: {:.1} %", n / 4, 100.0 * zero_shot);

    let config = ProbeConfig::default();
    let score = |scores: &Tensor, labels: &Tensor| topk_accuracy(scores, labels, 1).unwrap_or(0.0);
    let trials = search_lambda((&train.0, &train.1), (&validation.0, &validation.1), classes, &config, &score, &mut |t| {
        println!("  λ = {:<8.0e} validation top-1 {:.1} % ({} L-BFGS iterations)", t.lambda, 100.0 * t.score, t.iterations);
    })?;
    let best = trials.iter().max_by(|a, b| a.score.total_cmp(&b.score)).map_or(1.0, |t| t.lambda);
    let both = (Tensor::cat(&[&train.0, &validation.0], 0), Tensor::cat(&[&train.1, &validation.1], 0));
    let probe = fit(&both.0, &both.1, classes, best, None, &config)?;
    let probe_top1 = topk_accuracy(&probe.scores(&test.0), &test.1, 1).unwrap_or(f64::NAN);
    println!("linear probe at λ = {best:.0e} (fit on train + validation): test top-1 {:.1} %", 100.0 * probe_top1);
    Ok(())
}

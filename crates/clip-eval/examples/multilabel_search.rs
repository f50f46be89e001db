//! Times the one-vs-rest λ search (`search_lambda_multilabel`) on features saved as safetensors
//! (`train_x`, `train_y`, `validation_x`, `validation_y`; targets `[n, classes]`), for
//! `crates/clip-eval/scripts/time_multilabel_search.py`, which runs scikit-learn's search on the
//! same file. Prints one JSON line: seconds, fits, solver iterations, chosen λ (then every trial with
//! `MULTILABEL_TRIALS` set). Without a file it searches on a
//! small planted problem of its own (4 classes in 32-d, as `cargo xtask test` runs it).
//!
//!     cargo run --release -p clip-eval --example multilabel_search [-- FEATURES.safetensors]
#![allow(clippy::print_stdout)] // an example's output is its result

use clip_eval::linear_probe::{ProbeConfig, search_lambda_multilabel};
use clip_eval::metrics::map_11point;

fn main() {
    let (path, tensors) = match std::env::args().nth(1) {
        Some(path) => {
            let tensors = tch::Tensor::read_safetensors(&path).expect("reading the features");
            (path, tensors)
        }
        None => ("the planted problem".to_owned(), planted()),
    };
    let get = |name: &str| tensors.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name} in {path}")).1.shallow_clone();
    let (train, validation) = ((get("train_x"), get("train_y")), (get("validation_x"), get("validation_y")));
    let score = |scores: &tch::Tensor, targets: &tch::Tensor| map_11point(scores, targets).unwrap_or(f64::NAN);
    let start = std::time::Instant::now();
    let trials =
        search_lambda_multilabel((&train.0, &train.1), (&validation.0, &validation.1), &ProbeConfig::default(), &score, &mut |_| {}).expect("the search");
    let seconds = start.elapsed().as_secs_f64();
    let iterations: usize = trials.iter().map(|t| t.iterations).sum();
    println!("{{\"seconds\": {seconds}, \"fits\": {}, \"iterations\": {iterations}, \"lambda\": {}}}", trials.len(), trials[0].lambda);
    if std::env::var_os("MULTILABEL_TRIALS").is_some() {
        trials.iter().for_each(|t| println!("{t:?}"));
    }
}

/// Features with planted structure: each of 4 classes is present in about a third of the samples
/// and adds its own direction to the feature vector; 96 training and 48 validation samples.
fn planted() -> Vec<(String, tch::Tensor)> {
    use tch::{Device, Kind, Tensor};
    tch::manual_seed(0);
    let (classes, dim) = (4, 32);
    let directions = Tensor::randn([classes, dim], (Kind::Float, Device::Cpu));
    let split = |n: i64| {
        let targets = Tensor::rand([n, classes], (Kind::Float, Device::Cpu)).lt(0.33).to_kind(Kind::Float);
        (targets.matmul(&directions) + Tensor::randn([n, dim], (Kind::Float, Device::Cpu)), targets)
    };
    let ((train_x, train_y), (validation_x, validation_y)) = (split(96), split(48));
    [("train_x", train_x), ("train_y", train_y), ("validation_x", validation_x), ("validation_y", validation_y)].map(|(k, t)| (k.to_owned(), t)).into()
}

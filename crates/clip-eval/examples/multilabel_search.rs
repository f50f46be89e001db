//! Times the one-vs-rest λ search (`search_lambda_multilabel`) on features saved as safetensors
//! (`train_x`, `train_y`, `validation_x`, `validation_y`; targets `[n, classes]`), for
//! `crates/clip-eval/scripts/time_multilabel_search.py`, which runs scikit-learn's search on the
//! same file. Prints one JSON line: seconds, fits, chosen λ.
//!
//!     cargo run --release -p clip-eval --example multilabel_search -- FEATURES.safetensors
#![allow(clippy::print_stdout)] // an example's output is its result

use clip_eval::linear_probe::{ProbeConfig, search_lambda_multilabel};
use clip_eval::metrics::map_11point;

fn main() {
    let path = std::env::args().nth(1).expect("usage: multilabel_search FEATURES.safetensors");
    let tensors = tch::Tensor::read_safetensors(&path).expect("reading the features");
    let get = |name: &str| tensors.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name} in {path}")).1.shallow_clone();
    let (train, validation) = ((get("train_x"), get("train_y")), (get("validation_x"), get("validation_y")));
    let score = |scores: &tch::Tensor, targets: &tch::Tensor| map_11point(scores, targets).unwrap_or(f64::NAN);
    let start = std::time::Instant::now();
    let trials = search_lambda_multilabel((&train.0, &train.1), (&validation.0, &validation.1), &ProbeConfig::default(), &score, &mut |_| {}).expect("the search");
    let seconds = start.elapsed().as_secs_f64();
    println!("{{\"seconds\": {seconds}, \"fits\": {}, \"lambda\": {}}}", trials.len(), trials[0].lambda);
}

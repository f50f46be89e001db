//! The one-vs-rest probe against scikit-learn (`scripts/gen_multilabel_fixture.py`).

use std::sync::OnceLock;

use clip_eval::linear_probe::{ProbeConfig, fit_multilabel, fit_multilabel_lbfgs, fit_multilabel_newton, lambda_grid, search_lambda_multilabel};
use clip_eval::metrics::map_11point;
use tch::{Kind, Tensor};

use crate::support::{floats, ints, matrix};

fn fixture() -> &'static serde_json::Value {
    static FIXTURE: OnceLock<serde_json::Value> = OnceLock::new();
    FIXTURE.get_or_init(|| serde_json::from_str(include_str!("fixtures/multilabel_probe.json")).unwrap())
}

/// A `[rows, columns]` target tensor (1, 0, -1) from a JSON array of arrays.
fn targets(v: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<i64>> = v.as_array().unwrap().iter().map(ints).collect();
    Tensor::from_slice(&rows.concat()).view([rows.len() as i64, -1]).to_kind(Kind::Float)
}

fn split(name: &str) -> (Tensor, Tensor) {
    (matrix(&fixture()[format!("x_{name}")]), targets(&fixture()[format!("y_{name}")]))
}

/// The largest difference between two probes' weights and biases, relative to the largest weight.
fn probe_difference(a: &clip_eval::linear_probe::Probe, b: &clip_eval::linear_probe::Probe) -> f64 {
    let scale = b.weight.abs().max().double_value(&[]).max(1.0);
    let dw = (a.weight.to_kind(Kind::Double) - b.weight.to_kind(Kind::Double)).abs().max().double_value(&[]);
    let db = (a.bias.to_kind(Kind::Double) - b.bias.to_kind(Kind::Double)).abs().max().double_value(&[]);
    dw.max(db) / scale
}

#[test]
fn one_vs_rest_fit_finds_sklearns_solution_per_class() {
    let (x, y) = split("train");
    let precise = ProbeConfig { tolerance: 1e-10, kind: Kind::Double, ..ProbeConfig::default() };
    // Both solvers (more samples than features, so Newton works in the primal here).
    for (reference, newton) in fixture()["fits"].as_array().unwrap().iter().flat_map(|r| [(r, false), (r, true)]) {
        let c = reference["C"].as_f64().unwrap();
        let probe = if newton { fit_multilabel_newton(&x, &y, 1.0 / c, None, &precise) } else { fit_multilabel_lbfgs(&x, &y, 1.0 / c, None, &precise) }.unwrap();
        // scikit-learn's coef_ per class is a row; ours a column.
        let coef = matrix(&reference["coef"]).to_kind(Kind::Double).transpose(0, 1);
        let intercept = Tensor::from_slice(&floats(&reference["intercept"])).to_kind(Kind::Double);
        let scale = coef.abs().max().double_value(&[]).max(1.0);
        let dw = (probe.weight.to_kind(Kind::Double) - &coef).abs().max().double_value(&[]) / scale;
        let db = (probe.bias.to_kind(Kind::Double) - &intercept).abs().max().double_value(&[]) / scale;
        assert!(dw < 1e-4 && db < 1e-4, "C {c}, Newton {newton}: weights off by {dw}, intercepts by {db} after {} iterations", probe.iterations);
    }
}

#[test]
fn ignored_targets_leave_the_fit_of_their_class() {
    let (x, _) = split("train");
    let reference = &fixture()["ignored"];
    let y = targets(&reference["targets"]);
    let precise = ProbeConfig { tolerance: 1e-10, kind: Kind::Double, ..ProbeConfig::default() };
    let probe = fit_multilabel(&x, &y, 1.0 / reference["C"].as_f64().unwrap(), None, &precise).unwrap();
    let coef = Tensor::from_slice(&floats(&reference["coef"])).to_kind(Kind::Double);
    let dw = (probe.weight.select(1, 0).to_kind(Kind::Double) - &coef).abs().max().double_value(&[]);
    let db = (probe.bias.double_value(&[0]) - reference["intercept"].as_f64().unwrap()).abs();
    assert!(dw < 1e-4 && db < 1e-4, "class 0: weights off by {dw}, intercept by {db}");
    // Counting the ignored rows as negatives gives another fit.
    let counted = fit_multilabel(&x, &y.clamp_min(0.0), 1.0, None, &precise).unwrap();
    assert!((counted.weight.select(1, 0).to_kind(Kind::Double) - &coef).abs().max().double_value(&[]) > 1e-3);
}

/// The one-vs-rest objective summed over classes: each class's log-loss over the samples it
/// counts plus `λ/2 · ‖w‖²`, both over `n`.
fn objective(probe: &clip_eval::linear_probe::Probe, x: &Tensor, targets: &Tensor, lambda: f64) -> f64 {
    let n = x.size()[0] as f64;
    let z = x.to_kind(Kind::Double).matmul(&probe.weight.to_kind(Kind::Double)) + probe.bias.to_kind(Kind::Double);
    let (positive, counted) = (targets.gt(0.0).to_kind(Kind::Double), targets.ge(0.0).to_kind(Kind::Double));
    let loss = ((z.softplus() - positive * &z) * counted).sum(Kind::Double).double_value(&[]);
    (loss + 0.5 * lambda * probe.weight.to_kind(Kind::Double).square().sum(Kind::Double).double_value(&[])) / n
}

#[test]
fn newton_in_the_span_of_few_samples_finds_the_lbfgs_solution() {
    // 16 samples of 24 features: Newton works in the 16-dimensional span of the samples, the
    // L-BFGS solver in all 24 dimensions; the minimiser is unique, so they must agree. Class 0
    // ignores two samples.
    let (x, y) = split("train");
    let (x, y) = (x.narrow(0, 0, 16), y.narrow(0, 0, 16).copy());
    let _ = y.narrow(0, 0, 2).select(1, 0).fill_(-1.0);
    let precise = ProbeConfig { tolerance: 1e-10, kind: Kind::Double, ..ProbeConfig::default() };
    let mut previous = None;
    for lambda in [1e-3, 0.1, 1.0, 100.0] {
        let lbfgs = fit_multilabel_lbfgs(&x, &y, lambda, None, &precise).unwrap();
        let newton = fit_multilabel(&x, &y, lambda, None, &precise).unwrap();
        let difference = probe_difference(&newton, &lbfgs);
        let (ours, theirs) = (objective(&newton, &x, &y, lambda), objective(&lbfgs, &x, &y, lambda));
        assert!(difference < 1e-4, "λ {lambda}: Newton off L-BFGS by {difference} ({} against {} iterations)", newton.iterations, lbfgs.iterations);
        // Where they differ at all, Newton is the closer to the minimum.
        assert!(ours <= theirs + 1e-12 * theirs.abs(), "λ {lambda}: objective {ours} against L-BFGS's {theirs}");
        assert!(newton.iterations < lbfgs.iterations, "λ {lambda}: {} Newton iterations against {} L-BFGS", newton.iterations, lbfgs.iterations);
        // Warm-started from the previous λ's fit, as the search does.
        let warm = fit_multilabel(&x, &y, lambda, previous.as_ref(), &precise).unwrap();
        let difference = probe_difference(&warm, &lbfgs);
        assert!(difference < 1e-4, "λ {lambda}: warm-started Newton off by {difference}");
        previous = Some(warm);
    }
}

#[test]
fn searched_probe_matches_sklearns_test_map_at_the_same_c() {
    let (train, validation, test) = (split("train"), split("val"), split("test"));
    let config = ProbeConfig::default();
    let score = |scores: &Tensor, targets: &Tensor| map_11point(scores, targets).unwrap();
    let trials = search_lambda_multilabel((&train.0, &train.1), (&validation.0, &validation.1), &config, &score, &mut |_| {}).unwrap();
    // The paper's plan: seven starting points, then at most two more at each of four halvings.
    assert!((7..=15).contains(&trials.len()), "{} trials", trials.len());
    assert!(trials.iter().all(|t| t.score <= trials[0].score));
    let lambda = trials[0].lambda;
    let index = lambda_grid().iter().position(|&l| l == lambda).unwrap();
    let x = Tensor::cat(&[&train.0, &validation.0], 0);
    let y = Tensor::cat(&[&train.1, &validation.1], 0);
    let probe = fit_multilabel(&x, &y, lambda, None, &config).unwrap();
    let ours = 100.0 * map_11point(&probe.scores(&test.0), &test.1).unwrap();
    let sklearn = 100.0 * fixture()["map_by_lambda"][index].as_f64().unwrap();
    assert!((ours - sklearn).abs() <= 0.3, "λ {lambda}: test 11-point mAP {ours:.3} against scikit-learn's {sklearn:.3}");
    // The search learns something: better than the flattest model it tried.
    let heaviest = trials.iter().find(|t| t.lambda == 1e6).unwrap();
    assert!(heaviest.score < trials[0].score, "{trials:?}");
}

#[test]
fn bad_multilabel_input_is_an_error() {
    let x = Tensor::zeros([4, 3], (Kind::Float, tch::Device::Cpu));
    let y = Tensor::zeros([5, 2], (Kind::Float, tch::Device::Cpu));
    assert!(fit_multilabel(&x, &y, 1.0, None, &ProbeConfig::default()).is_err());
}

use clip_eval::linear_probe::{ProbeConfig, fit, lambda_grid, search_lambda};
use clip_eval::metrics::topk_accuracy;
use tch::{Kind, Tensor};

use crate::support::{fixture, floats, ints, matrix};

/// Largest difference from scikit-learn's converged fit: weights relative to their scale, and
/// intercepts up to the constant that nothing pins.
fn distance(probe: &clip_eval::linear_probe::Probe, reference: &serde_json::Value) -> (f64, f64) {
    let coef = matrix(&reference["coef"]).to_kind(Kind::Double);
    let intercept = Tensor::from_slice(&floats(&reference["intercept"])).to_kind(Kind::Double);
    let (w, b) = (probe.weight.to_kind(Kind::Double), probe.bias.to_kind(Kind::Double));
    let scale = coef.abs().max().double_value(&[]).max(1.0);
    let dw = (&w - &coef).abs().max().double_value(&[]) / scale;
    let centred = |t: &Tensor| t - t.mean(Kind::Double);
    (dw, (centred(&b) - centred(&intercept)).abs().max().double_value(&[]) / scale)
}

#[test]
fn lbfgs_finds_sklearns_solution_at_each_c() {
    let f = &fixture()["probe"];
    let (x, y) = (matrix(&f["x_train"]), Tensor::from_slice(&ints(&f["y_train"])));
    let x_test = matrix(&f["x_test"]);
    let precise = ProbeConfig { tolerance: 1e-9, kind: Kind::Double, ..ProbeConfig::default() };
    for reference in f["fits"].as_array().unwrap() {
        let c = reference["C"].as_f64().unwrap();
        // Run to convergence in double precision: scikit-learn's solution to four digits.
        let probe = fit(&x, &y, 4, 1.0 / c, None, &precise).unwrap();
        let (dw, db) = distance(&probe, reference);
        assert!(dw < 1e-4 && db < 1e-4, "C {c}: weights off by {dw}, intercepts by {db} after {} iterations", probe.iterations);
        // The defaults (float, scikit-learn's tolerance 1e-4, loose where the penalty is weak):
        // the same predictions.
        let probe = fit(&x, &y, 4, 1.0 / c, None, &ProbeConfig::default()).unwrap();
        let predicted = Vec::<i64>::try_from(probe.scores(&x_test).argmax(-1, false)).unwrap();
        assert_eq!(predicted, ints(&reference["predicted"]), "C {c}");
    }
}

#[test]
fn lambda_search_follows_the_parametric_binary_search() {
    let f = &fixture()["probe"];
    let train = (matrix(&f["x_train"]), Tensor::from_slice(&ints(&f["y_train"])));
    let validation = (matrix(&f["x_test"]), Tensor::from_slice(&ints(&f["y_test"])));
    let accuracy = |scores: &Tensor, labels: &Tensor| topk_accuracy(scores, labels, 1).unwrap();
    let trials = search_lambda((&train.0, &train.1), (&validation.0, &validation.1), 4, &ProbeConfig::default(), &accuracy, &mut |_| {}).unwrap();
    let grid = lambda_grid();
    assert_eq!((grid.len(), grid[0], grid[96]), (97, 1e-6, 1e6));
    // Seven starting points, then at most two more at each of four halvings.
    assert!((7..=15).contains(&trials.len()), "{} trials", trials.len());
    for start in [1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e6] {
        assert!(trials.iter().any(|t| (t.lambda / start - 1.0).abs() < 1e-9), "λ {start} not tried");
    }
    let best = trials[0];
    assert!(trials.iter().all(|t| t.score <= best.score));
    assert!(best.score > 0.9, "best validation accuracy {}", best.score);
    // The heaviest penalty flattens the classifier: no better than the rest.
    let heaviest = trials.iter().find(|t| t.lambda == 1e6).unwrap();
    assert!(heaviest.score < best.score);
}

#[test]
fn bad_probe_input_is_an_error() {
    let x = Tensor::zeros([0, 3], (tch::Kind::Float, tch::Device::Cpu));
    let y = Tensor::zeros([0], (tch::Kind::Int64, tch::Device::Cpu));
    assert!(fit(&x, &y, 3, 1.0, None, &ProbeConfig::default()).is_err());
}

//! The paper's linear probe (§A.3): multinomial logistic regression with an L2 penalty, fitted
//! full-batch by L-BFGS in libtorch, its strength λ chosen on a validation split by the paper's
//! parametric binary search over [1e-6, 1e6], then refitted on train + validation.
//!
//! The objective is scikit-learn's for `LogisticRegression(C = 1/λ)`: the mean cross-entropy plus
//! `λ / (2n) · ‖W‖²`, the intercept unpenalised. It is strictly convex, so any solver that
//! converges finds scikit-learn's solution; ours computes the gradient in closed form (no autograd)
//! and warm-starts each fit of the search from its nearest neighbour.

use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

/// Solver settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeConfig {
    /// L-BFGS iterations at most (scikit-learn's `max_iter`).
    pub max_iter: usize,
    /// Stop when the largest gradient component is below this (scikit-learn's `tol`).
    pub tolerance: f64,
    /// Curvature pairs kept (SciPy's `maxcor`).
    pub history: usize,
    /// Where the fit runs.
    pub device: Device,
    /// Float (fast; ample for accuracy) or Double (for fits compared to the last digit).
    pub kind: Kind,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self { max_iter: 1000, tolerance: 1e-4, history: 10, device: Device::Cpu, kind: Kind::Float }
    }
}

/// A fitted classifier: `scores = x @ weight + bias`.
#[derive(Debug)]
pub struct Probe {
    /// `[features, classes]`.
    pub weight: Tensor,
    /// `[classes]`.
    pub bias: Tensor,
    /// L-BFGS iterations taken.
    pub iterations: usize,
}

impl Probe {
    /// Class scores of `x` (`[n, features]`), on the CPU.
    pub fn scores(&self, x: &Tensor) -> Tensor {
        x.to_device(self.weight.device()).to_kind(self.weight.kind()).matmul(&self.weight).g_add(&self.bias).to_kind(Kind::Float).to_device(Device::Cpu)
    }

    /// The flat parameter vector the solver works on: `Wᵀ` row-major, then the bias.
    fn flat(&self) -> Tensor {
        Tensor::cat(&[self.weight.transpose(0, 1).contiguous().view([-1]), self.bias.view([-1])], 0)
    }
}

/// The penalised objective and its gradient at a flat parameter vector (`Wᵀ` row-major, then the
/// bias). Everything is laid out class-major (`[classes, n]`): with few classes the products
/// `Wᵀ·Xᵀ` and `Rᵀ·X` run several times faster than `X·W` and `Xᵀ·R` on the CPU.
struct Objective {
    /// `[n, features]`, contiguous.
    x: Tensor,
    /// `[features, n]`, contiguous.
    xt: Tensor,
    /// `[1, n]` class indices.
    labels: Tensor,
    /// `[classes, n]`.
    onehot: Tensor,
    lambda_over_n: f64,
    features: i64,
    classes: i64,
}

impl Objective {
    /// `Wᵀ` (`[classes, features]`) and the bias as views of the flat vector.
    fn split(&self, w: &Tensor) -> (Tensor, Tensor) {
        let n = self.features * self.classes;
        (w.narrow(0, 0, n).view([self.classes, self.features]), w.narrow(0, n, self.classes))
    }

    fn value_and_gradient(&self, w: &Tensor) -> (f64, Tensor) {
        let (weight_t, bias) = self.split(w);
        let kind = self.x.kind();
        let log_p = (weight_t.matmul(&self.xt) + bias.view([-1, 1])).log_softmax(0, kind);
        let n = self.x.size()[0] as f64;
        // One scalar read per evaluation: the mean cross-entropy plus the penalty.
        let value = log_p.gather(0, &self.labels, false).sum(kind) * (-1.0 / n)
            + weight_t.square().sum(kind) * (0.5 * self.lambda_over_n);
        let residual = (log_p.exp() - &self.onehot) / n;
        let grad_w = residual.matmul(&self.x) + &weight_t * self.lambda_over_n;
        let grad_b = residual.sum_dim_intlist(1, false, kind);
        (value.double_value(&[]), Tensor::cat(&[grad_w.view([-1]), grad_b], 0))
    }
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.dot(b).double_value(&[])
}

/// Fits the probe to `x` (`[n, features]`) and `labels` (`[n]`, below `classes`) at L2 strength
/// `lambda`, starting from `start` when given (a probe of the same shape).
pub fn fit(x: &Tensor, labels: &Tensor, classes: i64, lambda: f64, start: Option<&Probe>, config: &ProbeConfig) -> Result<Probe> {
    let (n, features) = x.size2()?;
    if n == 0 || classes < 2 {
        return Err(Error::Task(format!("a linear probe needs samples and two classes or more ({n} samples, {classes} classes)")));
    }
    let device = config.device;
    let x = x.to_device(device).to_kind(config.kind).contiguous();
    let labels = labels.to_device(device).view([1, -1]);
    let onehot = labels.view([-1]).onehot(classes).to_kind(config.kind).transpose(0, 1).contiguous();
    let xt = x.transpose(0, 1).contiguous();
    let objective = Objective { x, xt, labels, onehot, lambda_over_n: lambda / n as f64, features, classes };
    let mut w = match start {
        Some(p) => p.flat().to_device(device).to_kind(config.kind),
        None => Tensor::zeros([features * classes + classes], (config.kind, device)),
    };
    let (mut f, mut g) = objective.value_and_gradient(&w);
    let mut pairs: std::collections::VecDeque<(Tensor, Tensor, f64)> = std::collections::VecDeque::new();
    let mut iterations = 0;
    while iterations < config.max_iter && g.abs().max().double_value(&[]) > config.tolerance {
        iterations += 1;
        // Two-loop recursion: d = -H·g with H built from the stored curvature pairs.
        let mut q = g.copy();
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q -= y * a;
            alphas.push(a);
        }
        let scale = pairs.back().map_or(1.0 / g.abs().sum(Kind::Double).double_value(&[]).max(1e-12), |(s, y, _)| dot(s, y) / dot(y, y));
        let mut d = q * scale;
        for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &d);
            d += s * (a - b);
        }
        let d = -d;
        let slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (curvature lost to rounding): restart from steepest descent.
            pairs.clear();
            continue;
        }
        // Backtracking line search with the Armijo condition.
        let mut step = 1.0;
        let accepted = loop {
            let candidate = &w + &d * step;
            let (fc, gc) = objective.value_and_gradient(&candidate);
            if fc <= f + 1e-4 * step * slope {
                break Some((candidate, fc, gc));
            }
            step *= 0.5;
            if step < 1e-10 {
                break None;
            }
        };
        let Some((next, f_next, g_next)) = accepted else { break };
        let s = &next - &w;
        let y = &g_next - &g;
        let sy = dot(&s, &y);
        if sy > 1e-10 {
            pairs.push_back((s, y, 1.0 / sy));
            if pairs.len() > config.history {
                pairs.pop_front();
            }
        }
        // SciPy's relative reduction test at scikit-learn's `ftol` (64 machine epsilons).
        let converged = (f - f_next).abs() <= 64.0 * f64::EPSILON * f.abs().max(f_next.abs()).max(1.0);
        (w, f, g) = (next, f_next, g_next);
        if converged {
            break;
        }
    }
    let (weight_t, bias) = objective.split(&w);
    Ok(Probe { weight: weight_t.transpose(0, 1).contiguous(), bias: bias.copy(), iterations })
}

/// The λ grid of the search: 8 steps per decade over [1e-6, 1e6].
pub fn lambda_grid() -> Vec<f64> {
    (0..=96).map(|i| 10f64.powf(-6.0 + f64::from(i) / 8.0)).collect()
}

/// One fit of the search and its validation score.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Trial {
    /// L2 strength.
    pub lambda: f64,
    /// Validation score (higher is better).
    pub score: f64,
    /// L-BFGS iterations.
    pub iterations: usize,
}

/// The paper's parametric binary search: score λ ∈ {1e-6, 1e-4, …, 1e6} on the validation split,
/// then repeatedly try the grid points half the previous step either side of the best, down to
/// neighbours on the grid. `score` rates a probe's validation scores against the labels.
pub fn search_lambda(
    train: (&Tensor, &Tensor),
    validation: (&Tensor, &Tensor),
    classes: i64,
    config: &ProbeConfig,
    score: &dyn Fn(&Tensor, &Tensor) -> f64,
) -> Result<Vec<Trial>> {
    let grid = lambda_grid();
    let mut fitted: std::collections::BTreeMap<usize, (Trial, Probe)> = std::collections::BTreeMap::new();
    let evaluate = |i: usize, fitted: &mut std::collections::BTreeMap<usize, (Trial, Probe)>| -> Result<()> {
        if fitted.contains_key(&i) {
            return Ok(());
        }
        // Warm start from the nearest λ already fitted.
        let nearest = fitted.keys().min_by_key(|&&j| j.abs_diff(i)).copied();
        let probe = fit(train.0, train.1, classes, grid[i], nearest.map(|j| &fitted[&j].1), config)?;
        let trial = Trial { lambda: grid[i], score: score(&probe.scores(validation.0), validation.1), iterations: probe.iterations };
        fitted.insert(i, (trial, probe));
        Ok(())
    };
    for i in (0..grid.len()).step_by(16) {
        evaluate(i, &mut fitted)?;
    }
    let best = |fitted: &std::collections::BTreeMap<usize, (Trial, Probe)>| {
        // Ties go to the stronger penalty, the simpler model.
        fitted.iter().max_by(|a, b| a.1.0.score.total_cmp(&b.1.0.score).then(a.0.cmp(b.0))).map(|(&i, _)| i).unwrap_or(0)
    };
    let mut step = 8;
    while step >= 1 {
        let centre = best(&fitted);
        for i in [centre.checked_sub(step), Some(centre + step)].into_iter().flatten().filter(|&i| i < grid.len()) {
            evaluate(i, &mut fitted)?;
        }
        step /= 2;
    }
    let centre = best(&fitted);
    let mut trials: Vec<Trial> = fitted.into_values().map(|(t, _)| t).collect();
    // The best first, then the rest in λ order.
    let at = trials.iter().position(|t| t.lambda == grid[centre]).unwrap_or(0);
    let chosen = trials.remove(at);
    trials.insert(0, chosen);
    Ok(trials)
}

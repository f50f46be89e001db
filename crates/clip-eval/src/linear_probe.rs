//! The paper's linear probe (§A.3): multinomial logistic regression with an L2 penalty, fitted
//! full-batch by L-BFGS in libtorch, its strength λ chosen on a validation split by the paper's
//! parametric binary search over [1e-6, 1e6], then refitted on train + validation.
//!
//! The objective is scikit-learn's for `LogisticRegression(C = 1/λ)`: the mean cross-entropy plus
//! `λ / (2n) · ‖W‖²`, the intercept unpenalised. It is strictly convex, so any solver that
//! converges finds scikit-learn's solution; ours computes the gradient in closed form (no autograd)
//! and warm-starts each fit of the search from its nearest neighbour.
//!
//! Multi-label sets (VOC2007) take the one-vs-rest probe, [`fit_multilabel`]: a binary L2 logistic
//! regression per class, as scikit-learn's `OneVsRestClassifier(LogisticRegression(C))` fits them,
//! all classes batched in one L-BFGS run (each class with its own curvature pairs, step and
//! stopping test), searched by the same λ plan on validation 11-point mAP.

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

/// A smooth convex objective over independent blocks of parameters: `[blocks, params]` in, each
/// block's value and the gradient (`[blocks, params]`) out. The multinomial probe is one block;
/// the one-vs-rest probe has a block per class, each its own binary problem.
trait Objective {
    fn value_and_gradient(&self, w: &Tensor) -> Result<(Vec<f64>, Tensor)>;
}

/// The multinomial objective at a flat parameter vector (`Wᵀ` row-major, then the bias), one
/// block. Everything is laid out class-major (`[classes, n]`): with few classes the products
/// `Wᵀ·Xᵀ` and `Rᵀ·X` run several times faster than `X·W` and `Xᵀ·R` on the CPU.
struct Multinomial {
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

impl Multinomial {
    /// `Wᵀ` (`[classes, features]`) and the bias as views of the flat vector.
    fn split(&self, w: &Tensor) -> (Tensor, Tensor) {
        let (w, n) = (w.view([-1]), self.features * self.classes);
        (w.narrow(0, 0, n).view([self.classes, self.features]), w.narrow(0, n, self.classes))
    }
}

impl Objective for Multinomial {
    fn value_and_gradient(&self, w: &Tensor) -> Result<(Vec<f64>, Tensor)> {
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
        Ok((vec![value.double_value(&[])], Tensor::cat(&[grad_w.view([-1]), grad_b], 0).view([1, -1])))
    }
}

/// `a · b` of each row of two `[blocks, params]` tensors.
fn row_dots(a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from((a * b).sum_dim_intlist(1, false, Kind::Double).to_device(Device::Cpu))?)
}

/// A per-block factor as a `[blocks, 1]` column beside `like`.
fn column(values: &[f64], like: &Tensor) -> Tensor {
    Tensor::from_slice(values).to_kind(like.kind()).to_device(like.device()).view([-1, 1])
}

/// L-BFGS from `w` (`[blocks, params]`), every block with its own curvature pairs, step and
/// stopping test, all blocks evaluated together; returns the minimiser and the iterations taken.
fn minimise(objective: &dyn Objective, mut w: Tensor, config: &ProbeConfig) -> Result<(Tensor, usize)> {
    let blocks = w.size()[0] as usize;
    let (mut f, mut g) = objective.value_and_gradient(&w)?;
    let mut active = vec![true; blocks];
    // Curvature pairs (s, y, ρ); a block that kept no pair at some step has zero rows and ρ = 0.
    // ρ is a `[blocks, 1]` column, so the two-loop recursion stays in tensor operations.
    let mut pairs: std::collections::VecDeque<(Tensor, Tensor, Tensor)> = std::collections::VecDeque::new();
    // s·y / y·y of each block's latest pair: the initial Hessian scale.
    let mut gamma: Vec<Option<f64>> = vec![None; blocks];
    let mut iterations = 0;
    loop {
        let largest = Vec::<f64>::try_from(g.abs().amax(1, false).to_kind(Kind::Double).to_device(Device::Cpu))?;
        for (a, m) in active.iter_mut().zip(&largest) {
            *a &= *m > config.tolerance;
        }
        if iterations >= config.max_iter || !active.contains(&true) {
            break;
        }
        iterations += 1;
        let on: Vec<f64> = active.iter().map(|&a| f64::from(u8::from(a))).collect();
        let steepest: Vec<f64> = row_dots(&g.abs(), &g.ones_like())?.iter().map(|s| 1.0 / s.max(1e-12)).collect();
        // Two-loop recursion: d = -H·g with H built from the stored curvature pairs.
        let mut q = g.copy();
        let mut alphas = Vec::with_capacity(pairs.len());
        let kind = g.kind();
        for (s, y, rho) in pairs.iter().rev() {
            let a = (s * &q).sum_dim_intlist(1, true, kind) * rho;
            q -= y * &a;
            alphas.push(a);
        }
        let scale: Vec<f64> = gamma.iter().zip(&steepest).map(|(g, s)| g.unwrap_or(*s)).collect();
        let mut d = &q * column(&scale, &q);
        for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
            let b = (y * &d).sum_dim_intlist(1, true, kind) * rho;
            d += s * (a - b);
        }
        let mut d = -d * column(&on, &g);
        let mut slope = row_dots(&g, &d)?;
        let lost: Vec<bool> = (0..blocks).map(|b| active[b] && slope[b] >= 0.0).collect();
        if lost.contains(&true) {
            // Not a descent direction (curvature lost to rounding): those blocks forget their
            // pairs and take the steepest descent.
            let keep: Vec<f64> = lost.iter().map(|&l| f64::from(u8::from(!l))).collect();
            let keep_column = column(&keep, &g);
            for (s, y, rho) in pairs.iter_mut() {
                *s *= &keep_column;
                *y *= &keep_column;
                *rho *= &keep_column;
            }
            let restart: Vec<f64> = (0..blocks).map(|b| if lost[b] { steepest[b] } else { 0.0 }).collect();
            (0..blocks).filter(|&b| lost[b]).for_each(|b| gamma[b] = None);
            d = d * column(&keep, &g) - &g * column(&restart, &g);
            slope = row_dots(&g, &d)?;
        }
        // Backtracking line search with the Armijo condition, block by block.
        let (mut step, mut pending, mut failed) = (vec![1.0; blocks], active.clone(), vec![false; blocks]);
        let (mut next, mut f_next, mut g_next) = (w.copy(), f.clone(), g.copy());
        while pending.contains(&true) {
            let candidate = &w + &d * column(&step, &d);
            let (fc, gc) = objective.value_and_gradient(&candidate)?;
            let mut accepted = vec![0.0; blocks];
            for b in 0..blocks {
                if !pending[b] {
                    continue;
                }
                if fc[b] <= f[b] + 1e-4 * step[b] * slope[b] {
                    (accepted[b], pending[b], f_next[b]) = (1.0, false, fc[b]);
                } else {
                    step[b] *= 0.5;
                    if step[b] < 1e-10 {
                        (pending[b], failed[b]) = (false, true);
                    }
                }
            }
            if accepted.contains(&1.0) {
                let take = column(&accepted, &d).gt(0.5);
                next = candidate.where_self(&take, &next);
                g_next = gc.where_self(&take, &g_next);
            }
        }
        let s = &next - &w;
        let y = &g_next - &g;
        let (sy, yy) = (row_dots(&s, &y)?, row_dots(&y, &y)?);
        // A pair is kept where its curvature is positive relative to its size (L-BFGS-B's test,
        // `s·y > ε·y·y`): an absolute floor would refuse every pair near the solution, where
        // steps are small, and leave that block crawling by its last scale.
        let good: Vec<f64> =
            (0..blocks).map(|b| f64::from(u8::from(active[b] && !failed[b] && sy[b] > f64::EPSILON * yy[b] && sy[b] > 0.0))).collect();
        if good.contains(&1.0) {
            let rho: Vec<f64> = (0..blocks).map(|b| good[b] / sy[b]).collect();
            (0..blocks).filter(|&b| good[b] > 0.0).for_each(|b| gamma[b] = Some(sy[b] / yy[b]));
            let good = column(&good, &s);
            pairs.push_back((&s * &good, &y * &good, column(&rho, &s)));
            if pairs.len() > config.history {
                pairs.pop_front();
            }
        }
        for b in 0..blocks {
            // SciPy's relative reduction test at scikit-learn's `ftol` (64 machine epsilons).
            let converged = (f[b] - f_next[b]).abs() <= 64.0 * f64::EPSILON * f[b].abs().max(f_next[b].abs()).max(1.0);
            active[b] &= !failed[b] && !converged;
        }
        (w, f, g) = (next, f_next, g_next);
        if !active.contains(&true) {
            break;
        }
    }
    Ok((w, iterations))
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
    let objective = Multinomial { x, xt, labels, onehot, lambda_over_n: lambda / n as f64, features, classes };
    let w = match start {
        Some(p) => p.flat().to_device(device).to_kind(config.kind),
        None => Tensor::zeros([features * classes + classes], (config.kind, device)),
    };
    let (w, iterations) = minimise(&objective, w.view([1, -1]), config)?;
    let (weight_t, bias) = objective.split(&w);
    Ok(Probe { weight: weight_t.transpose(0, 1).contiguous(), bias: bias.copy(), iterations })
}

/// The one-vs-rest objective: a binary logistic regression per class (scikit-learn's
/// `OneVsRestClassifier(LogisticRegression(C = 1/λ))`), block `c` holding `[w_c, b_c]`. Each
/// class's value is its summed log-loss over the samples it does not ignore plus `λ/2 · ‖w_c‖²`,
/// both over `n`: the minimiser of scikit-learn's fit of that class on those samples.
struct OneVsRest {
    /// `[n, features]`, contiguous.
    x: Tensor,
    /// `[features, n]`, contiguous.
    xt: Tensor,
    /// `[classes, n]`: 1 for a positive, 0 otherwise.
    positive: Tensor,
    /// `[classes, n]`: 0 where the sample is ignored for the class, else 1.
    counted: Tensor,
    lambda_over_n: f64,
    features: i64,
}

impl Objective for OneVsRest {
    fn value_and_gradient(&self, w: &Tensor) -> Result<(Vec<f64>, Tensor)> {
        let kind = self.x.kind();
        let (weight, bias) = (w.narrow(1, 0, self.features), w.narrow(1, self.features, 1));
        let z = weight.matmul(&self.xt) + bias; // [classes, n]
        let n = self.x.size()[0] as f64;
        let loss = (z.softplus() - &self.positive * &z) * &self.counted;
        let value = loss.sum_dim_intlist(1, false, kind) / n + weight.square().sum_dim_intlist(1, false, kind) * (0.5 * self.lambda_over_n);
        let residual = (z.sigmoid() - &self.positive) * &self.counted / n;
        let grad_w = residual.matmul(&self.x) + &weight * self.lambda_over_n;
        let grad_b = residual.sum_dim_intlist(1, true, kind);
        Ok((Vec::<f64>::try_from(value.to_kind(Kind::Double).to_device(Device::Cpu))?, Tensor::cat(&[grad_w, grad_b], 1)))
    }
}

/// Fits one L2 logistic regression per class to `x` (`[n, features]`) and `targets` (`[n,
/// classes]`: above 0 positive, 0 negative, below 0 ignored for that class, as VOC's "difficult"
/// samples) at strength `lambda`, all classes in one batched L-BFGS; `start` warm-starts it.
/// The probe's scores are each class's logit.
pub fn fit_multilabel(x: &Tensor, targets: &Tensor, lambda: f64, start: Option<&Probe>, config: &ProbeConfig) -> Result<Probe> {
    let (n, features) = x.size2()?;
    let (rows, classes) = targets.size2()?;
    if n == 0 || rows != n || classes < 1 {
        return Err(Error::Task(format!("a multi-label probe needs samples and targets for each ({n} samples, {rows} × {classes} targets)")));
    }
    let device = config.device;
    let x = x.to_device(device).to_kind(config.kind).contiguous();
    let targets = targets.to_device(device).transpose(0, 1);
    let positive = targets.gt(0.0).to_kind(config.kind).contiguous();
    let counted = targets.ge(0.0).to_kind(config.kind).contiguous();
    let xt = x.transpose(0, 1).contiguous();
    let objective = OneVsRest { x, xt, positive, counted, lambda_over_n: lambda / n as f64, features };
    let w = match start {
        Some(p) => Tensor::cat(&[p.weight.transpose(0, 1), p.bias.view([-1, 1])], 1).to_device(device).to_kind(config.kind),
        None => Tensor::zeros([classes, features + 1], (config.kind, device)),
    };
    let (w, iterations) = minimise(&objective, w, config)?;
    Ok(Probe { weight: w.narrow(1, 0, features).transpose(0, 1).contiguous(), bias: w.select(1, features).copy(), iterations })
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
/// neighbours on the grid. `score` rates a probe's validation scores against the labels;
/// `on_trial` hears of each fit as it is scored (a search makes a dozen or so).
pub fn search_lambda(
    train: (&Tensor, &Tensor),
    validation: (&Tensor, &Tensor),
    classes: i64,
    config: &ProbeConfig,
    score: &dyn Fn(&Tensor, &Tensor) -> f64,
    on_trial: &mut dyn FnMut(&Trial),
) -> Result<Vec<Trial>> {
    let fit = |lambda: f64, start: Option<&Probe>| fit(train.0, train.1, classes, lambda, start, config);
    parametric_search(&fit, &|probe: &Probe| score(&probe.scores(validation.0), validation.1), on_trial)
}

/// [`search_lambda`] for the one-vs-rest probe ([`fit_multilabel`]): `train` and `validation`
/// hold features and `[n, classes]` targets; `score` rates validation scores against the targets
/// (11-point mAP for VOC2007).
pub fn search_lambda_multilabel(
    train: (&Tensor, &Tensor),
    validation: (&Tensor, &Tensor),
    config: &ProbeConfig,
    score: &dyn Fn(&Tensor, &Tensor) -> f64,
    on_trial: &mut dyn FnMut(&Trial),
) -> Result<Vec<Trial>> {
    let fit = |lambda: f64, start: Option<&Probe>| fit_multilabel(train.0, train.1, lambda, start, config);
    parametric_search(&fit, &|probe: &Probe| score(&probe.scores(validation.0), validation.1), on_trial)
}

/// The search itself, over any probe: `fit` at a λ (warm-started), `score` on validation.
fn parametric_search(
    fit: &dyn Fn(f64, Option<&Probe>) -> Result<Probe>,
    score: &dyn Fn(&Probe) -> f64,
    on_trial: &mut dyn FnMut(&Trial),
) -> Result<Vec<Trial>> {
    let grid = lambda_grid();
    let mut fitted: std::collections::BTreeMap<usize, (Trial, Probe)> = std::collections::BTreeMap::new();
    let mut evaluate = |i: usize, fitted: &mut std::collections::BTreeMap<usize, (Trial, Probe)>| -> Result<()> {
        if fitted.contains_key(&i) {
            return Ok(());
        }
        // Warm start from the nearest λ already fitted.
        let nearest = fitted.keys().min_by_key(|&&j| j.abs_diff(i)).copied();
        let probe = fit(grid[i], nearest.map(|j| &fitted[&j].1))?;
        let trial = Trial { lambda: grid[i], score: score(&probe), iterations: probe.iterations };
        on_trial(&trial);
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

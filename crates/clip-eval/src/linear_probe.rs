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
//! all classes batched, searched by the same λ plan on validation 11-point mAP. With fewer samples
//! than features it is solved by Newton's method in the span of the samples (exact: the
//! minimiser's weights lie there), about 5 steps a fit where L-BFGS takes about 100; otherwise by one
//! L-BFGS run (each class with its own curvature pairs, step and stopping test).

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

/// One round of the blocks' backtracking line search with the Armijo condition: each `pending`
/// block whose `candidate` value at its `step` meets it against `value` and `slope` is accepted
/// (1 in the first list returned) and leaves `pending`; the others halve their step, and give up
/// (leave `pending`, true in the second list) below 1e-10.
fn armijo_round(candidate: &[f64], value: &[f64], slope: &[f64], step: &mut [f64], pending: &mut [bool]) -> (Vec<f64>, Vec<bool>) {
    let (mut accepted, mut gave_up) = (vec![0.0; pending.len()], vec![false; pending.len()]);
    for b in 0..pending.len() {
        if !pending[b] {
            continue;
        }
        if candidate[b] <= value[b] + 1e-4 * step[b] * slope[b] {
            (accepted[b], pending[b]) = (1.0, false);
        } else {
            step[b] *= 0.5;
            if step[b] < 1e-10 {
                (pending[b], gave_up[b]) = (false, true);
            }
        }
    }
    (accepted, gave_up)
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
            let (accepted, gave_up) = armijo_round(&fc, &f, &slope, &mut step, &mut pending);
            for b in 0..blocks {
                if accepted[b] > 0.0 {
                    f_next[b] = fc[b];
                }
                failed[b] |= gave_up[b];
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
/// samples) at strength `lambda`; `start` warm-starts it. Fewer samples than features take
/// [`fit_multilabel_newton`] (Newton in the span of the samples), the rest
/// [`fit_multilabel_lbfgs`]: both find the same minimiser. The probe's scores are each class's logit.
pub fn fit_multilabel(x: &Tensor, targets: &Tensor, lambda: f64, start: Option<&Probe>, config: &ProbeConfig) -> Result<Probe> {
    let (n, features) = x.size2()?;
    if n < features { fit_multilabel_newton(x, targets, lambda, start, config) } else { fit_multilabel_lbfgs(x, targets, lambda, start, config) }
}

/// [`fit_multilabel`] by one batched L-BFGS run over all classes (each class with its own
/// curvature pairs, step and stopping test).
pub fn fit_multilabel_lbfgs(x: &Tensor, targets: &Tensor, lambda: f64, start: Option<&Probe>, config: &ProbeConfig) -> Result<Probe> {
    let (n, features) = x.size2()?;
    let classes = check_multilabel(x, targets)?;
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

/// [`fit_multilabel`] by damped Newton, all classes batched (the private `Newton` solver).
pub fn fit_multilabel_newton(x: &Tensor, targets: &Tensor, lambda: f64, start: Option<&Probe>, config: &ProbeConfig) -> Result<Probe> {
    Newton::new(x, targets, config)?.fit(lambda, start, config)
}

/// The number of classes of a multi-label problem, or why it is not one.
fn check_multilabel(x: &Tensor, targets: &Tensor) -> Result<i64> {
    let (n, _) = x.size2()?;
    let (rows, classes) = targets.size2()?;
    if n == 0 || rows != n || classes < 1 {
        return Err(Error::Task(format!("a multi-label probe needs samples and targets for each ({n} samples, {rows} × {classes} targets)")));
    }
    Ok(classes)
}

/// The one-vs-rest problem prepared for Newton's method, in float64. With fewer samples than
/// features it works in the span of the samples: the penalised weights of the minimiser lie in
/// the row space of `X` (the loss sees only `X·w`, and any part of `w` outside it only adds to
/// the penalty), so with `X·Xᵀ = U·S²·Uᵀ` and the orthonormal basis `V = Xᵀ·U·S⁻¹` of that row
/// space, `w = V·β` gives `X·w = U·S·β` and `‖w‖ = ‖β‖`: the same problem in `r ≤ n` dimensions,
/// exactly. Each class is then an `(r + 1)`-dimensional strictly convex problem (the intercept
/// unpenalised), solved by Newton steps with a backtracking line search, every class's Hessian
/// factored in one batched solve. The basis depends on `X` alone, so a λ search prepares it once.
struct Newton {
    /// `[n, r + 1]`: the reduced features (`U·S`, or `X` itself when not reduced), then a column of ones.
    z: Tensor,
    /// `[features, r]`: `V`, when reduced.
    basis: Option<Tensor>,
    /// `[classes, n]`: 1 for a positive, 0 otherwise.
    positive: Tensor,
    /// `[classes, n]`: 0 where the sample is ignored for the class, else 1.
    counted: Tensor,
}

impl Newton {
    fn new(x: &Tensor, targets: &Tensor, config: &ProbeConfig) -> Result<Self> {
        check_multilabel(x, targets)?;
        let (n, features) = x.size2()?;
        let options = (Kind::Double, config.device);
        let x = x.to_device(config.device).to_kind(Kind::Double).contiguous();
        let (z, basis) = if n < features {
            let (eigenvalues, u) = x.matmul(&x.transpose(0, 1)).f_linalg_eigh("L")?;
            // Directions X barely spans (rounding-level eigenvalues of X·Xᵀ) are left out.
            let largest = eigenvalues.max().double_value(&[]).max(f64::MIN_POSITIVE);
            let kept = eigenvalues.gt(largest * 1e-12).nonzero().view([-1]);
            let s = eigenvalues.index_select(0, &kept).sqrt();
            let u = u.index_select(1, &kept);
            (&u * &s, Some(x.transpose(0, 1).matmul(&(&u / &s))))
        } else {
            (x, None)
        };
        let z = Tensor::cat(&[z, Tensor::ones([n, 1], options)], 1).contiguous();
        let targets = targets.to_device(config.device).transpose(0, 1);
        Ok(Self { z, basis, positive: targets.gt(0.0).to_kind(Kind::Double).contiguous(), counted: targets.ge(0.0).to_kind(Kind::Double).contiguous() })
    }

    /// Each class's objective (`[classes]`) at `theta` (`[classes, r + 1]`), scaled as
    /// [`OneVsRest`]'s, and the logits it was computed from.
    fn value(&self, theta: &Tensor, penalty: &Tensor) -> (Tensor, Tensor) {
        let n = self.z.size()[0] as f64;
        let logits = theta.matmul(&self.z.transpose(0, 1)); // [classes, n]
        let loss = ((logits.softplus() - &self.positive * &logits) * &self.counted).sum_dim_intlist(1, false, Kind::Double) / n;
        (loss + (theta.square() * penalty).sum_dim_intlist(1, false, Kind::Double) * 0.5, logits)
    }

    /// Newton's step `-H⁻¹·g` of each class (rows of `gradient`, `[k, r + 1]`) by conjugate
    /// gradients on Hessian-vector products (`H·v = Zᵀ·(D ⊙ Z·v) + Λ·v`, never `H` itself),
    /// preconditioned by `H`'s diagonal: in the eigenbasis `Zᵀ·Z = S²` is diagonal, so the
    /// diagonal is `H` itself where the curvature `D` is even across samples. Each class stops
    /// when its residual is below `min(½, √‖g‖)·‖g‖` (a superlinear inexact Newton method).
    fn newton_step(&self, gradient: &Tensor, curvature: &Tensor, penalty: &Tensor, norms: &[f64]) -> Result<Tensor> {
        let zt = self.z.transpose(0, 1);
        let product = |v: &Tensor| (v.matmul(&zt) * curvature).matmul(&self.z) + v * penalty;
        let inverse_diagonal = (curvature.matmul(&self.z.square()) + penalty).clamp_min(f64::MIN_POSITIVE).reciprocal();
        let target: Vec<f64> = norms.iter().map(|g| (g * g.sqrt().min(0.5)).powi(2)).collect();
        let mut x = gradient.zeros_like();
        let mut residual = -gradient;
        let mut y = &residual * &inverse_diagonal;
        let mut p = y.copy();
        let mut ry = (&residual * &y).sum_dim_intlist(1, true, Kind::Double);
        let mut open = vec![1.0; norms.len()];
        for _ in 0..self.z.size()[1] {
            let hp = product(&p);
            let curvature_p = (&p * &hp).sum_dim_intlist(1, true, Kind::Double).clamp_min(f64::MIN_POSITIVE);
            let alpha = &ry / curvature_p * column(&open, gradient);
            x += &alpha * &p;
            residual -= &alpha * &hp;
            let left = row_dots(&residual, &residual)?;
            for (o, (l, t)) in open.iter_mut().zip(left.iter().zip(&target)) {
                if *l <= *t {
                    *o = 0.0;
                }
            }
            if !open.contains(&1.0) {
                break;
            }
            y = &residual * &inverse_diagonal;
            let ry_next = (&residual * &y).sum_dim_intlist(1, true, Kind::Double);
            p = &y + &p * (&ry_next / ry.clamp_min(f64::MIN_POSITIVE));
            ry = ry_next;
        }
        Ok(x)
    }

    fn fit(&self, lambda: f64, start: Option<&Probe>, config: &ProbeConfig) -> Result<Probe> {
        let (n, width) = self.z.size2()?;
        let classes = self.positive.size()[0];
        let device = self.z.device();
        let reduced = width - 1;
        // λ/n on the weights, nothing on the intercept.
        let mut penalty = vec![lambda / n as f64; width as usize];
        penalty[reduced as usize] = 0.0;
        let penalty = Tensor::from_slice(&penalty).to_device(device).view([1, -1]);
        let mut theta = match start {
            Some(p) => {
                let w = p.weight.to_device(device).to_kind(Kind::Double);
                let beta = match &self.basis {
                    Some(v) => v.transpose(0, 1).matmul(&w),
                    None => w,
                };
                Tensor::cat(&[beta.transpose(0, 1), p.bias.to_device(device).to_kind(Kind::Double).view([-1, 1])], 1)
            }
            None => Tensor::zeros([classes, width], (Kind::Double, device)),
        };
        let (mut active, mut iterations) = (vec![true; classes as usize], 0);
        let (mut f, mut logits) = self.value(&theta, &penalty);
        loop {
            let probability = logits.sigmoid();
            let residual = (&probability - &self.positive) * &self.counted / n as f64;
            let gradient = residual.matmul(&self.z) + &theta * &penalty;
            // The gradient's Euclidean norm bounds its largest component in the original
            // coordinates (`V` is orthonormal), so this is at least as strict as L-BFGS's test.
            let norms = Vec::<f64>::try_from(gradient.norm_scalaropt_dim(2, [1], false).to_device(Device::Cpu))?;
            for (a, g) in active.iter_mut().zip(&norms) {
                *a &= g.is_finite() && *g > config.tolerance;
            }
            if iterations >= config.max_iter || !active.contains(&true) {
                break;
            }
            iterations += 1;
            // Only the classes still short of the tolerance take a step: their Hessians alone are
            // formed and factored.
            let on: Vec<i64> = (0..classes).filter(|&c| active[c as usize]).collect();
            let on = Tensor::from_slice(&on).to_device(device);
            let probability = probability.index_select(0, &on);
            let curvature: Tensor = &probability * (1.0 - &probability) * self.counted.index_select(0, &on) / n as f64;
            let on_norms: Vec<f64> = (0..classes as usize).filter(|&c| active[c]).map(|c| norms[c]).collect();
            let step = self.newton_step(&gradient.index_select(0, &on), &curvature, &penalty, &on_norms)?;
            let direction = theta.zeros_like().index_copy(0, &on, &step);
            let slope = row_dots(&gradient, &direction)?;
            let values = Vec::<f64>::try_from(f.to_device(Device::Cpu))?;
            // Backtracking with the Armijo condition, class by class; Newton's unit step is
            // taken near the minimiser, so this usually costs one evaluation.
            let (mut step, mut pending) = (vec![1.0; classes as usize], active.clone());
            let (mut next, mut f_next, mut logits_next) = (theta.copy(), f.copy(), logits.copy());
            while pending.contains(&true) {
                let candidate = &theta + &direction * column(&step, &direction);
                let (fc, lc) = self.value(&candidate, &penalty);
                let fcv = Vec::<f64>::try_from(fc.to_device(Device::Cpu))?;
                let (accepted, gave_up) = armijo_round(&fcv, &values, &slope, &mut step, &mut pending);
                // No decrease left at this precision: the class is as converged as it gets.
                active.iter_mut().zip(&gave_up).for_each(|(a, g)| *a &= !g);
                if accepted.contains(&1.0) {
                    let take = column(&accepted, &direction).gt(0.5);
                    next = candidate.where_self(&take, &next);
                    logits_next = lc.where_self(&take, &logits_next);
                    f_next = fc.where_self(&take.view([-1]), &f_next);
                }
            }
            let reached = Vec::<f64>::try_from(f_next.to_device(Device::Cpu))?;
            for c in 0..classes as usize {
                // L-BFGS's relative reduction test as well: below it the gradient is at the
                // rounding floor of float64, and further steps only shuffle the last digits.
                active[c] &= (values[c] - reached[c]).abs() > 64.0 * f64::EPSILON * values[c].abs().max(reached[c].abs()).max(1.0);
            }
            (theta, f, logits) = (next, f_next, logits_next);
        }
        let beta = theta.narrow(1, 0, reduced).transpose(0, 1);
        let weight = match &self.basis {
            Some(v) => v.matmul(&beta),
            None => beta,
        };
        let kind = config.kind;
        Ok(Probe { weight: weight.to_kind(kind).contiguous(), bias: theta.select(1, reduced).to_kind(kind).contiguous(), iterations })
    }
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
    let (n, features) = train.0.size2()?;
    // Newton's reduction depends on the training features alone: made once for every λ.
    let newton = if n < features { Some(Newton::new(train.0, train.1, config)?) } else { None };
    let fit = |lambda: f64, start: Option<&Probe>| match &newton {
        Some(newton) => newton.fit(lambda, start, config),
        None => fit_multilabel_lbfgs(train.0, train.1, lambda, start, config),
    };
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

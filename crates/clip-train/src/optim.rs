//! AdamW as torch implements it, over named parameters split into open_clip's two groups, and the
//! learning-rate schedules. Written out (rather than tch's optimiser) so that its state — both
//! moments of every parameter and the step — can be checkpointed and restored bit for bit.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::config::OptimSection;

/// Whether open_clip exempts a parameter from weight decay: gains and biases (fewer than two
/// dimensions), norms, embeddings and `logit_scale`.
pub fn exempt_from_decay(name: &str, tensor: &Tensor) -> bool {
    tensor.dim() < 2 || ["bn", "ln", "bias", "embedding", "logit_scale"].iter().any(|k| name.contains(k))
}

/// One trainable parameter and its moments.
struct Slot {
    param: Tensor,
    m: Tensor,
    v: Tensor,
    decay: bool,
    /// For the token embedding: which rows have ever had a gradient. Only those are updated,
    /// which is exact, not an approximation: a row whose gradient and both moments are zero, and
    /// that takes no weight decay, is left bit for bit unchanged by AdamW. A run touches a few
    /// hundred of the 49,408 rows, and updating all of them cost ~15 % of a `tiny` step.
    touched: Option<Tensor>,
}

impl Slot {
    /// The rows to update this step (all of them: `None`).
    fn rows(&mut self, grad: &Tensor) -> Option<Tensor> {
        let touched = self.touched.as_mut()?;
        let _ = touched.logical_or_(&grad.ne(0.0).any_dim(1, false));
        Some(touched.nonzero().squeeze_dim(1))
    }

    /// Rows ever touched, as far as the moments show (after a restore).
    fn touched_from_moments(&mut self) {
        if let Some(touched) = self.touched.as_mut() {
            touched.copy_(&self.m.ne(0.0).any_dim(1, false).logical_or(&self.v.ne(0.0).any_dim(1, false)));
        }
    }
}

/// Whether only a parameter's touched rows need updating: the vocabulary-sized token embedding,
/// which takes no weight decay.
fn row_sparse(name: &str, decay: bool) -> bool {
    !decay && name.ends_with("token_embedding.weight")
}

/// AdamW (decoupled weight decay, bias-corrected moments).
pub struct AdamW {
    slots: BTreeMap<String, Slot>,
    step: u64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl AdamW {
    /// Over `params` (name → trainable tensor).
    pub fn new(params: BTreeMap<String, Tensor>, config: &OptimSection) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param)| {
                let decay = !exempt_from_decay(&name, &param);
                let (m, v) = (param.zeros_like(), param.zeros_like());
                let touched = row_sparse(&name, decay).then(|| Tensor::zeros([param.size()[0]], (Kind::Bool, param.device())));
                (name, Slot { param, m, v, decay, touched })
            })
            .collect();
        Self { slots, step: 0, beta1: config.beta1, beta2: config.beta2, eps: config.eps, weight_decay: config.weight_decay }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The parameters, by name.
    pub fn params(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.slots.iter().map(|(n, s)| (n, &s.param))
    }

    /// Names of the parameters with and without weight decay.
    pub fn groups(&self) -> (Vec<&str>, Vec<&str>) {
        let decay = self.slots.iter().filter(|(_, s)| s.decay).map(|(n, _)| n.as_str()).collect();
        let exempt = self.slots.iter().filter(|(_, s)| !s.decay).map(|(n, _)| n.as_str()).collect();
        (decay, exempt)
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        for slot in self.slots.values_mut() {
            let mut grad = slot.param.grad();
            if grad.defined() {
                let _ = grad.detach_().zero_();
            }
        }
    }

    /// The gradients that exist, by name.
    pub fn grads(&self) -> Vec<Tensor> {
        self.slots.values().map(|s| s.param.grad()).filter(Tensor::defined).collect()
    }

    /// Global L2 norm of the gradients (non-finite if any gradient is).
    pub fn grad_norm(&self) -> f64 {
        let norms: Vec<Tensor> = self.grads().iter().map(|g| g.to_kind(Kind::Float).norm()).collect();
        if norms.is_empty() {
            return 0.0;
        }
        Tensor::stack(&norms, 0).norm().double_value(&[])
    }

    /// Scales every gradient by `factor` (clipping).
    pub fn scale_grads(&mut self, factor: f64) {
        for mut grad in self.grads() {
            let _ = grad.g_mul_scalar_(factor);
        }
    }

    /// One update at learning rate `lr`, as `torch.optim.AdamW` computes it.
    pub fn step(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let t = self.step as i32;
        let (bc1, bc2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        for slot in self.slots.values_mut() {
            let grad = slot.param.grad();
            if !grad.defined() {
                continue;
            }
            let rows = slot.rows(&grad);
            let pick = |t: &Tensor| rows.as_ref().map_or_else(|| t.shallow_clone(), |r| t.index_select(0, r));
            let (mut param, mut m, mut v, grad) = (pick(&slot.param), pick(&slot.m), pick(&slot.v), pick(&grad));
            if slot.decay && self.weight_decay > 0.0 {
                let _ = param.g_mul_scalar_(1.0 - lr * self.weight_decay);
            }
            let _ = m.lerp_(&grad, 1.0 - self.beta1);
            let _ = v.g_mul_scalar_(self.beta2);
            let _ = v.addcmul_(&grad, &(&grad * (1.0 - self.beta2)));
            let denom = v.sqrt() / bc2.sqrt() + self.eps;
            let _ = param.addcdiv_(&(&m * (-lr / bc1)), &denom);
            if let Some(rows) = &rows {
                let _ = slot.param.index_copy_(0, rows, &param);
                let _ = slot.m.index_copy_(0, rows, &m);
                let _ = slot.v.index_copy_(0, rows, &v);
            }
        }
    }

    /// The state to checkpoint: `m.NAME`, `v.NAME` for every parameter, and `step`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_owned(), Tensor::from(self.step as i64))];
        for (name, slot) in &self.slots {
            out.push((format!("m.{name}"), slot.m.shallow_clone()));
            out.push((format!("v.{name}"), slot.v.shallow_clone()));
        }
        out
    }

    /// Restores [`AdamW::state`]; every parameter's moments must be present with its shape.
    pub fn load_state(&mut self, tensors: Vec<(String, Tensor)>) -> Result<(), String> {
        let mut map: BTreeMap<String, Tensor> = tensors.into_iter().collect();
        let step = map.remove("step").ok_or("no `step`")?;
        let _guard = tch::no_grad_guard();
        for (name, slot) in &mut self.slots {
            for (prefix, target) in [("m", &mut slot.m), ("v", &mut slot.v)] {
                let key = format!("{prefix}.{name}");
                let saved = map.remove(&key).ok_or_else(|| format!("no `{key}`"))?;
                if saved.size() != target.size() {
                    return Err(format!("`{key}` has shape {:?}, the model {:?}", saved.size(), target.size()));
                }
                target.copy_(&saved);
            }
            slot.touched_from_moments();
        }
        if let Some(extra) = map.keys().next() {
            return Err(format!("unexpected `{extra}` (a different model?)"));
        }
        self.step = step.int64_value(&[]) as u64;
        Ok(())
    }
}

/// The learning rate at `step` (0-based) of `total`: linear warm-up to `lr` over `warmup` steps,
/// then open_clip's `cosine_lr`, `const_lr`, or `const_lr_cooldown` (linear to 0 over `cooldown`).
pub fn learning_rate(config: &OptimSection, step: u64, total: u64) -> f64 {
    let (lr, warmup) = (config.lr, config.warmup);
    if step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    match config.schedule.as_str() {
        "cosine" => {
            let (e, es) = ((step - warmup) as f64, total.saturating_sub(warmup).max(1) as f64);
            0.5 * (1.0 + (std::f64::consts::PI * e / es).cos()) * lr
        }
        "const-cooldown" => {
            let start = total.saturating_sub(config.cooldown);
            if step < start || config.cooldown == 0 {
                lr
            } else {
                lr * (1.0 - (step - start) as f64 / config.cooldown as f64).max(0.0)
            }
        }
        _ => lr,
    }
}

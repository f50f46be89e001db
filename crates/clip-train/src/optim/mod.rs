//! AdamW as torch implements it, over named parameters split into open_clip's two groups, and the
//! learning-rate schedules. Written out (rather than tch's optimiser) so that its state — both
//! moments of every parameter and the step — can be checkpointed and restored bit for bit.
//!
//! Lean: tch binds neither torch's multi-tensor nor its fused AdamW, and a per-tensor update costs
//! a dozen dispatches and temporaries per parameter. So every dense parameter, its gradient and
//! both moments live in four flat buffers — the parameters and gradients the model and autograd
//! see are views into them — and a step is one fused pass on the CPU, a handful of ops elsewhere
//! (`fused`); zeroing, clipping and averaging gradients over ranks touch one buffer.

mod fused;

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::config::OptimSection;
use crate::{Error, Result};

/// Whether open_clip exempts a parameter from weight decay (`open_clip_train/main.py`): gains and
/// biases (fewer than two dimensions), `bn`, `ln`, `bias` and `logit_scale` by name. Embedding
/// tables are matrices and take decay, as there.
pub fn exempt_from_decay(name: &str, tensor: &Tensor) -> bool {
    tensor.dim() < 2 || ["bn", "ln", "bias", "logit_scale"].iter().any(|k| name.contains(k))
}

/// Each parameter's place in the flat buffers starts on a multiple of this many elements (64
/// bytes of f32), where vector kernels want their operands.
const ALIGN: i64 = 16;

/// One trainable parameter and its moments (views into the flat buffers, except the token
/// embedding's).
struct Slot {
    param: Tensor,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

/// The dense parameters, their gradients and moments, 1-D; decayed parameters first, so that
/// elements `[0, decayed)` take weight decay. Padding between parameters stays zero throughout.
struct Flat {
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    decayed: i64,
}

/// The vocabulary-sized token embedding, kept out of the flat buffers: AdamW runs only on rows
/// that have ever had a gradient. Exact, not an approximation: a row whose gradient and moments
/// are zero is changed by AdamW only through weight decay, which is applied to the whole table.
/// A run touches a few hundred of the 49,408 rows; updating all of them cost ~15 % of a `tiny`
/// step.
struct Rows {
    name: String,
    touched: Tensor,
}

impl Rows {
    /// The rows to update this step.
    fn update(&mut self, grad: &Tensor) -> Tensor {
        let _ = self.touched.logical_or_(&grad.ne(0.0).any_dim(1, false));
        self.touched.nonzero().squeeze_dim(1)
    }

    /// Rows ever touched, as far as the moments show (after a restore).
    fn rebuild(&mut self, slot: &Slot) {
        self.touched.copy_(&slot.m.ne(0.0).any_dim(1, false).logical_or(&slot.v.ne(0.0).any_dim(1, false)));
    }
}

/// AdamW (decoupled weight decay, bias-corrected moments).
pub struct AdamW {
    slots: BTreeMap<String, Slot>,
    flat: Flat,
    rows: Option<Rows>,
    step: u64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl AdamW {
    /// Over `params` (name → leaf tensor requiring grad), which must share one floating kind and
    /// device.
    /// Their storage (and their gradients') moves into the optimiser's flat buffers; values are
    /// kept. A parameter the loss does not reach gets a zero gradient, as torch's
    /// `zero_grad(set_to_none=False)` leaves it.
    pub fn new(params: BTreeMap<String, Tensor>, config: &OptimSection) -> Result<Self> {
        let options = params.values().next().map_or((Kind::Float, tch::Device::Cpu), |p| (p.kind(), p.device()));
        if let Some((name, p)) = params.iter().find(|(_, p)| (p.kind(), p.device()) != options || !p.is_floating_point() || !p.requires_grad() || !p.is_leaf()) {
            return Err(Error::Config(format!(
                "parameter {name} is {:?} on {:?}, requires_grad {}, leaf {}; AdamW needs leaf parameters that require grad, of one floating kind on one device",
                p.kind(),
                p.device(),
                p.requires_grad(),
                p.is_leaf()
            )));
        }
        let rows_name = params.keys().find(|n| n.ends_with("token_embedding.weight")).cloned();
        let mut dense: Vec<(&String, &Tensor, bool)> =
            params.iter().filter(|(n, _)| Some(*n) != rows_name.as_ref()).map(|(n, p)| (n, p, !exempt_from_decay(n, p))).collect();
        dense.sort_by_key(|(_, _, decay)| !decay); // Stable: decayed first, each group in name order.
        ensure_grads(dense.iter().map(|(_, p, _)| *p));
        let mut offsets = Vec::with_capacity(dense.len());
        let (mut total, mut decayed) = (0, 0);
        for (_, p, decay) in &dense {
            offsets.push(total);
            total += (p.numel() as u64).next_multiple_of(ALIGN as u64) as i64;
            if *decay {
                decayed = total;
            }
        }
        let zeros = || Tensor::zeros([total], options);
        let flat = Flat { param: zeros(), grad: zeros(), m: zeros(), v: zeros(), decayed };
        let _guard = tch::no_grad_guard();
        let mut slots = BTreeMap::new();
        for ((name, p, decay), offset) in dense.into_iter().zip(offsets) {
            let view = |buffer: &Tensor| buffer.narrow(0, offset, p.numel() as i64).view(p.size().as_slice());
            let (param_view, grad_view) = (view(&flat.param), view(&flat.grad));
            param_view.shallow_clone().copy_(p);
            grad_view.shallow_clone().copy_(&p.grad());
            p.shallow_clone().set_data(&param_view);
            p.grad().set_data(&grad_view);
            slots.insert(name.clone(), Slot { param: p.shallow_clone(), m: view(&flat.m), v: view(&flat.v), decay });
        }
        let rows = rows_name.map(|name| {
            let p = &params[&name];
            let decay = !exempt_from_decay(&name, p);
            slots.insert(name.clone(), Slot { param: p.shallow_clone(), m: p.zeros_like(), v: p.zeros_like(), decay });
            Rows { touched: Tensor::zeros([p.size()[0]], (Kind::Bool, p.device())), name }
        });
        Ok(Self { slots, flat, rows, step: 0, beta1: config.beta1, beta2: config.beta2, eps: config.eps, weight_decay: config.weight_decay })
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
        for mut grad in self.grads() {
            let _ = grad.zero_();
        }
    }

    /// The gradient buffers, 1-D and contiguous: the flat one of the dense parameters, then the
    /// token embedding's once it has one. Changing them changes the parameters' gradients.
    pub fn grads(&self) -> Vec<Tensor> {
        let rows = self.rows.as_ref().map(|r| self.slots[&r.name].param.grad()).filter(Tensor::defined);
        std::iter::once(self.flat.grad.shallow_clone()).chain(rows.map(|g| g.view([-1]))).collect()
    }

    /// Global L2 norm of the gradients (non-finite if any gradient is).
    pub fn grad_norm(&self) -> f64 {
        let norms: Vec<Tensor> = self.grads().iter().map(|g| g.to_kind(Kind::Float).norm()).collect();
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
        let decay = 1.0 - lr * self.weight_decay;
        let h = fused::Hyper {
            decay: decay as f32,
            w1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            w2: (1.0 - self.beta2) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps: self.eps as f32,
            neg_step: (-lr / bc1) as f32,
        };
        let Flat { param, grad, m, v, decayed } = &mut self.flat;
        let decayed = if self.weight_decay > 0.0 { *decayed } else { 0 };
        fused::update(param, grad, m, v, decayed, &h);
        let Some(rows) = self.rows.as_mut() else { return };
        let slot = self.slots.get_mut(&rows.name).expect("the token embedding has a slot");
        let grad = slot.param.grad();
        if !grad.defined() {
            return;
        }
        if slot.decay && self.weight_decay > 0.0 {
            let _ = slot.param.g_mul_scalar_(decay);
        }
        let index = rows.update(&grad);
        let pick = |t: &Tensor| t.index_select(0, &index);
        let (param, m, v) = (pick(&slot.param), pick(&slot.m), pick(&slot.v));
        let line = |t: &Tensor| t.view([-1]); // 1-D views of the gathered rows, as `update` takes.
        fused::update(&mut line(&param), &line(&pick(&grad)), &mut line(&m), &mut line(&v), 0, &h);
        let _ = slot.param.index_copy_(0, &index, &param);
        let _ = slot.m.index_copy_(0, &index, &m);
        let _ = slot.v.index_copy_(0, &index, &v);
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
        }
        if let Some(rows) = self.rows.as_mut() {
            rows.rebuild(&self.slots[&rows.name]);
        }
        if let Some(extra) = map.keys().next() {
            return Err(format!("unexpected `{extra}` (a different model?)"));
        }
        self.step = step.int64_value(&[]) as u64;
        Ok(())
    }
}

/// Gives every parameter a gradient (zero where it has none), so that it can be re-pointed into
/// the flat buffer: libtorch creates a `.grad` only in a backward pass.
fn ensure_grads<'a>(params: impl Iterator<Item = &'a Tensor>) {
    tch::with_grad(|| {
        let missing: Vec<Tensor> = params.filter(|p| !p.grad().defined()).map(|p| p.sum(Kind::Float) * 0.0).collect();
        if !missing.is_empty() {
            Tensor::stack(&missing, 0).sum(Kind::Float).backward();
        }
    });
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

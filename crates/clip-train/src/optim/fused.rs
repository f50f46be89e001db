//! One AdamW update over flat buffers: a single fused pass on the CPU, torch's op sequence
//! elsewhere.
//!
//! On the CPU, torch's op-by-op update reads and writes every element about two dozen times and
//! allocates two buffer-sized temporaries, whose first touch (page faults) costs more than the
//! arithmetic: over ViT-B-32's 126 M dense elements the op sequence took ~1 s on two cores. The
//! fused pass reads parameter, gradient and both moments once and writes three of them back.

use tch::{Device, Kind, Tensor};

/// Below this many elements one thread does the whole update.
const PARALLEL_FROM: usize = 1 << 16;

/// The scalars of one step, in f32 as torch's float kernels use them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hyper {
    /// `1 - lr·weight_decay`, applied to the decayed elements before the update.
    pub decay: f32,
    /// Weight of the new gradient in the first moment, `1 - β1`.
    pub w1: f32,
    /// `β2`, and the weight of the squared gradient, `1 - β2`.
    pub beta2: f32,
    pub w2: f32,
    /// `sqrt(1 - β2^t)`.
    pub bc2_sqrt: f32,
    pub eps: f32,
    /// `-lr / (1 - β1^t)`.
    pub neg_step: f32,
}

/// Updates 1-D `p`, `m`, `v` in place from `g`; elements `[0, decayed)` take weight decay.
pub(super) fn update(p: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, decayed: i64, h: &Hyper) {
    let fusable = [&*p, g, &*m, &*v].iter().all(|t| t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous());
    if fusable {
        // SAFETY: four distinct, contiguous f32 CPU buffers; nothing else reads or writes them
        // until this call returns (the optimiser owns them between backward passes).
        let (p, g, m, v) = unsafe { (slice_mut(p), slice(g), slice_mut(m), slice_mut(v)) };
        fused(p, g, m, v, decayed as usize, h);
    } else {
        by_ops(p, g, m, v, decayed, h);
    }
}

/// # Safety
/// `t` is a contiguous f32 CPU tensor and no other slice of its storage is alive.
unsafe fn slice_mut(t: &mut Tensor) -> &mut [f32] {
    // An empty tensor may have a null data pointer, which no slice may be built on.
    if t.numel() == 0 {
        return &mut [];
    }
    // SAFETY: per the contract, `data_ptr()` points at `numel()` initialised f32s we may borrow.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr().cast::<f32>(), t.numel()) }
}

/// # Safety
/// As [`slice_mut`], except that other shared slices may be alive.
unsafe fn slice(t: &Tensor) -> &[f32] {
    if t.numel() == 0 {
        return &[];
    }
    // SAFETY: per the contract.
    unsafe { std::slice::from_raw_parts(t.data_ptr().cast::<f32>(), t.numel()) }
}

/// Splits the buffers over torch's intra-op thread count and runs [`kernel`] on each part.
fn fused(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decayed: usize, h: &Hyper) {
    let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1);
    if threads == 1 || p.len() < PARALLEL_FROM {
        kernel(p, g, m, v, decayed, h);
        return;
    }
    let chunk = p.len().div_ceil(threads).next_multiple_of(64);
    std::thread::scope(|scope| {
        let parts = p.chunks_mut(chunk).zip(g.chunks(chunk)).zip(m.chunks_mut(chunk)).zip(v.chunks_mut(chunk));
        for (k, (((p, g), m), v)) in parts.enumerate() {
            let decayed = decayed.saturating_sub(k * chunk);
            scope.spawn(move || kernel(p, g, m, v, decayed, h));
        }
    });
}

/// The update of equal-length slices, decayed elements first.
fn kernel(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decayed: usize, h: &Hyper) {
    let split = decayed.min(p.len());
    let (p_decay, p_rest) = p.split_at_mut(split);
    let (m_decay, m_rest) = m.split_at_mut(split);
    let (v_decay, v_rest) = v.split_at_mut(split);
    let (g_decay, g_rest) = g.split_at(split);
    adam(p_decay, g_decay, m_decay, v_decay, h.decay, h);
    adam(p_rest, g_rest, m_rest, v_rest, 1.0, h);
}

/// Decay by `decay` (1 leaves a value exact), both moments and the parameter, element by element,
/// in one pass (the compiler vectorises the loop).
fn adam(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay: f32, h: &Hyper) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += h.w1 * (g - *m);
        *v = *v * h.beta2 + g * (g * h.w2);
        let denom = v.sqrt() / h.bc2_sqrt + h.eps;
        *p = *p * decay + (*m * h.neg_step) / denom;
    }
}

/// `torch.optim.AdamW`'s single-tensor sequence, for buffers the fused pass cannot take.
fn by_ops(p: &mut Tensor, g: &Tensor, m: &mut Tensor, v: &mut Tensor, decayed: i64, h: &Hyper) {
    if decayed > 0 {
        let _ = p.narrow(0, 0, decayed).g_mul_scalar_(f64::from(h.decay));
    }
    let _ = m.lerp_(g, f64::from(h.w1));
    let _ = v.g_mul_scalar_(f64::from(h.beta2));
    let _ = v.addcmul_(g, &(g * f64::from(h.w2)));
    let denom = v.sqrt() / f64::from(h.bc2_sqrt) + f64::from(h.eps);
    let _ = p.addcdiv_(&(&*m * f64::from(h.neg_step)), &denom);
}

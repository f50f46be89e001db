//! OpenAI's ModifiedResNet image tower: a three-convolution stem with average pooling,
//! anti-aliased bottlenecks (strided stages average-pool instead of striding their convolutions),
//! and attention pooling (`attnpool`) in place of global average pooling.
//!
//! BatchNorm layers keep the checkpoint's `running_mean`, `running_var` and
//! `num_batches_tracked`. By default they use the running statistics (inference); in training mode
//! ([`ModifiedResNet::set_training`], PyTorch's `model.train()`) they normalise by the batch's own
//! statistics and update the running ones, without which a tower trained from scratch has no
//! normalisation at all.
//!
//! With gradient checkpointing ([`ModifiedResNet::set_grad_checkpointing`]) each stage
//! (`layerN`) keeps only its input and runs again in the backward; that recompute normalises by
//! the same batch statistics but updates copies of the running ones, so they move once per step.

use std::sync::atomic::{AtomicBool, Ordering};

use clip_tensor::checkpoint::Pass;
use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::config::ResNetConfig;
use crate::init::{normal, random};
use crate::layers::{Shared, checkpointed};

/// Which statistics a BatchNorm normalises by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statistics {
    /// The running ones (inference).
    Running,
    /// The batch's, updating the running ones (training).
    Batch,
    /// The batch's, leaving the running ones as they are: a checkpointed stage's recompute, whose
    /// forward pass updated them already.
    BatchUntracked,
}

impl Statistics {
    fn for_pass(self, pass: Pass) -> Self {
        match (self, pass) {
            (Self::Batch, Pass::Recompute) => Self::BatchUntracked,
            (stats, _) => stats,
        }
    }
}

/// BatchNorm2d with PyTorch's state-dict keys.
#[derive(Debug)]
struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl BatchNorm {
    fn new(p: nn::Path<'_>, channels: i64, zero_gamma: bool) -> Self {
        let bn = Self {
            weight: p.var("weight", &[channels], Init::Const(if zero_gamma { 0.0 } else { 1.0 })),
            bias: p.var("bias", &[channels], Init::Const(0.0)),
            running_mean: p.zeros_no_train("running_mean", &[channels]),
            running_var: p.ones_no_train("running_var", &[channels]),
        };
        // Kept for checkpoint fidelity; inference ignores it.
        let _ = p.add("num_batches_tracked", Tensor::zeros([], (Kind::Int64, p.device())), false);
        bn
    }

    /// ATen's channels-last BatchNorm vectorises over channels; a channel count that is not a
    /// multiple of 8 (AVX2's floats per vector) ran 3–4× slower than on NCHW here — the `tiny`
    /// stem's 12 channels at batch 256: 55 ms against 13 ms forward and backward — so such a
    /// layer normalises an NCHW copy and hands back channels-last strides (docs/perf.md).
    fn forward(&self, xs: &Tensor, stats: Statistics) -> Tensor {
        let training = stats != Statistics::Running;
        // Untracked: the same kernel on the same values, updating copies.
        let copies = (stats == Statistics::BatchUntracked).then(|| (self.running_mean.copy(), self.running_var.copy()));
        let (mean, var) = copies.as_ref().map_or((&self.running_mean, &self.running_var), |(m, v)| (m, v));
        let norm = |xs: &Tensor| xs.batch_norm(Some(&self.weight), Some(&self.bias), Some(mean), Some(var), training, 0.1, 1e-5, true);
        let channels = xs.size()[1];
        if xs.device() == tch::Device::Cpu && xs.dim() == 4 && xs.stride()[1] == 1 && channels > 1 && channels % 8 != 0 {
            channels_last(&norm(&xs.contiguous()))
        } else {
            norm(xs)
        }
    }
}

/// The same values with channels-last strides (`[n, c, h, w]` laid out as `[n, h, w, c]`).
fn channels_last(xs: &Tensor) -> Tensor {
    xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

fn conv(p: nn::Path<'_>, inputs: i64, outputs: i64, kernel: i64, padding: i64) -> nn::Conv2D {
    nn::conv2d(p, inputs, outputs, kernel, nn::ConvConfig { padding, bias: false, ws_init: random(nn::init::DEFAULT_KAIMING_UNIFORM), ..Default::default() })
}

/// Bottleneck with expansion 4; `stride` > 1 average-pools after `conv2` and on the shortcut.
#[derive(Debug)]
struct Bottleneck {
    conv1: nn::Conv2D,
    bn1: BatchNorm,
    conv2: nn::Conv2D,
    bn2: BatchNorm,
    conv3: nn::Conv2D,
    bn3: BatchNorm,
    /// `downsample.0` (1×1 conv) and `downsample.1` (BatchNorm); the pool before them has no weights.
    downsample: Option<(nn::Conv2D, BatchNorm)>,
    stride: i64,
}

impl Bottleneck {
    fn new(p: nn::Path<'_>, inplanes: i64, planes: i64, stride: i64) -> Self {
        let out = planes * 4;
        let downsample = (stride > 1 || inplanes != out).then(|| {
            let d = &p / "downsample";
            (conv(&d / "0", inplanes, out, 1, 0), BatchNorm::new(&d / "1", out, false))
        });
        Self {
            conv1: conv(&p / "conv1", inplanes, planes, 1, 0),
            bn1: BatchNorm::new(&p / "bn1", planes, false),
            conv2: conv(&p / "conv2", planes, planes, 3, 1),
            bn2: BatchNorm::new(&p / "bn2", planes, false),
            conv3: conv(&p / "conv3", planes, out, 1, 0),
            // open_clip zero-initialises the last BatchNorm of each block.
            bn3: BatchNorm::new(&p / "bn3", out, true),
            downsample,
            stride,
        }
    }

    fn forward(&self, xs: &Tensor, stats: Statistics) -> Tensor {
        let pool = |t: &Tensor| if self.stride > 1 { t.avg_pool2d([self.stride, self.stride], [self.stride, self.stride], [0, 0], false, true, None) } else { t.shallow_clone() };
        let out = self.bn1.forward(&xs.apply(&self.conv1), stats).relu();
        let out = pool(&self.bn2.forward(&out.apply(&self.conv2), stats).relu());
        let out = self.bn3.forward(&out.apply(&self.conv3), stats);
        let identity = match &self.downsample {
            Some((conv, bn)) => bn.forward(&pool(xs).apply(conv), stats),
            None => xs.shallow_clone(),
        };
        (out + identity).relu()
    }
}

/// A stage's blocks in order.
fn run_stage(stage: &[Bottleneck], xs: &Tensor, stats: Statistics) -> Tensor {
    stage.iter().fold(xs.shallow_clone(), |xs, block| block.forward(&xs, stats))
}

/// Attention pooling: the mean of the final feature map queries every position.
#[derive(Debug)]
struct AttentionPool2d {
    positional_embedding: Tensor,
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    c_proj: nn::Linear,
    heads: i64,
}

impl AttentionPool2d {
    fn new(p: nn::Path<'_>, spatial: i64, width: i64, heads: i64, output: i64) -> Self {
        let std = (width as f64).powf(-0.5);
        let linear = |name: &str, outputs: i64| crate::layers::linear(&p / name, width, outputs, std);
        Self {
            positional_embedding: p.var("positional_embedding", &[spatial * spatial + 1, width], normal(std)),
            q_proj: linear("q_proj", width),
            k_proj: linear("k_proj", width),
            v_proj: linear("v_proj", width),
            c_proj: linear("c_proj", output),
            heads,
        }
    }
}

impl Module for AttentionPool2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, c, _, _) = xs.size4().expect("feature map is 4-d");
        let xs = xs.flatten(2, 3).transpose(1, 2); // [b, hw, c]
        let xs = Tensor::cat(&[xs.mean_dim([1].as_slice(), true, xs.kind()), xs], 1) + &self.positional_embedding; // [b, hw+1, c]
        let head_dim = c / self.heads;
        let split = |t: Tensor| {
            let t_len = t.size()[1];
            t.view([b, t_len, self.heads, head_dim]).transpose(1, 2)
        };
        let q = split(xs.narrow(1, 0, 1).apply(&self.q_proj)); // [b, h, 1, dh]
        let k = split(xs.apply(&self.k_proj));
        let v = split(xs.apply(&self.v_proj));
        let out = Tensor::scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, false, None, false);
        out.transpose(1, 2).reshape([b, c]).apply(&self.c_proj)
    }
}

/// # Shapes
/// Input `[b, 3, image_size, image_size]`; output `[b, embed_dim]`.
#[derive(Debug)]
pub struct ModifiedResNet {
    conv1: nn::Conv2D,
    bn1: BatchNorm,
    conv2: nn::Conv2D,
    bn2: BatchNorm,
    conv3: nn::Conv2D,
    bn3: BatchNorm,
    stages: Vec<Shared<Vec<Bottleneck>>>,
    attnpool: AttentionPool2d,
    /// Training mode: every BatchNorm of the tower by batch statistics.
    training: AtomicBool,
    /// Each stage checkpointed in training.
    grad_checkpointing: bool,
}

impl ModifiedResNet {
    /// Builds the tower under `p` (`visual` in a CLIP checkpoint), in inference mode.
    pub fn new(p: nn::Path<'_>, c: &ResNetConfig, embed_dim: i64) -> Self {
        let w = c.width;
        let mut inplanes = w;
        let stages = c
            .layers
            .iter()
            .enumerate()
            .map(|(i, &blocks)| {
                let planes = w << i;
                let stride = if i == 0 { 1 } else { 2 };
                let stage = &p / format!("layer{}", i + 1);
                let blocks = (0..blocks)
                    .map(|b| {
                        let block = Bottleneck::new(&stage / b, inplanes, planes, if b == 0 { stride } else { 1 });
                        inplanes = planes * 4;
                        block
                    })
                    .collect();
                Shared::new(blocks)
            })
            .collect();
        Self {
            conv1: nn::conv2d(&p / "conv1", 3, w / 2, 3, nn::ConvConfig { stride: 2, padding: 1, bias: false, ws_init: random(nn::init::DEFAULT_KAIMING_UNIFORM), ..Default::default() }),
            bn1: BatchNorm::new(&p / "bn1", w / 2, false),
            conv2: conv(&p / "conv2", w / 2, w / 2, 3, 1),
            bn2: BatchNorm::new(&p / "bn2", w / 2, false),
            conv3: conv(&p / "conv3", w / 2, w, 3, 1),
            bn3: BatchNorm::new(&p / "bn3", w, false),
            stages,
            attnpool: AttentionPool2d::new(&p / "attnpool", c.image_size / 32, w * 32, c.heads, embed_dim),
            training: AtomicBool::new(false),
            grad_checkpointing: false,
        }
    }

    /// Gradient checkpointing in training: each stage keeps only its input and runs again in the
    /// backward, its BatchNorm statistics updated once (open_clip's `set_grad_checkpointing`).
    pub fn set_grad_checkpointing(&mut self, on: bool) {
        self.grad_checkpointing = on;
    }

    /// Training mode: BatchNorm normalises by batch statistics and updates its running ones.
    pub fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

impl Module for ModifiedResNet {
    fn forward(&self, images: &Tensor) -> Tensor {
        // Channels-last strides on the CPU: oneDNN's convolutions (and the BatchNorm, ReLU and
        // pooling after them, which keep the layout) run a training step of the `tiny` tower
        // about 20 % faster than on NCHW (docs/perf.md).
        let images = match images.device() {
            tch::Device::Cpu => channels_last(images),
            _ => images.shallow_clone(),
        };
        let stats = if self.training.load(Ordering::Relaxed) { Statistics::Batch } else { Statistics::Running };
        let xs = self.bn1.forward(&images.apply(&self.conv1), stats).relu();
        let xs = self.bn2.forward(&xs.apply(&self.conv2), stats).relu();
        let xs = self.bn3.forward(&xs.apply(&self.conv3), stats).relu();
        let mut xs = xs.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None);
        for stage in &self.stages {
            xs = if self.grad_checkpointing {
                checkpointed(stage, &xs, move |stage, xs, pass| run_stage(stage, xs, stats.for_pass(pass)))
            } else {
                run_stage(stage, &xs, stats)
            };
        }
        xs.apply(&self.attnpool)
    }
}

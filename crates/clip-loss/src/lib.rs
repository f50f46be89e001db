//! CLIP's contrastive loss and SigLIP's sigmoid loss, as pure functions of features and scales
//! (open_clip 3.3.0 `loss.py` semantics).
//!
//! Scales are taken as the model returns them, already exponentiated (`logit_scale.exp()`), as
//! open_clip's losses take them. Distribution is not this crate's business: the `*_gathered`
//! variants take features already gathered from every rank (by `clip-dist`, with or without
//! gradient), so the same code runs in one process and in many, and is tested against the
//! single-process loss over the concatenated batch.
//!
//! # Example
//! ```
//! use tch::{Device, Kind, Tensor};
//!
//! let features = Tensor::eye(4, (Kind::Float, Device::Cpu)); // four pairs, each image equal to its text
//! let scale = Tensor::from(100.0f32);
//! let loss = f64::try_from(clip_loss::clip_loss(&features, &features, &scale))?;
//! assert!(loss < 1e-6, "matched pairs cost nothing: {loss}");
//! let shuffled = features.roll([1], [0]);
//! assert!(f64::try_from(clip_loss::clip_loss(&features, &shuffled, &scale))? > 10.0);
//! # Ok::<(), tch::TchError>(())
//! ```

use tch::{Kind, Reduction, Tensor};

/// CLIP's initial temperature: `logit_scale = ln(1 / 0.07)` (the paper, §2.5).
pub const INIT_LOGIT_SCALE: f64 = 2.659_260_036_932_778_4;
/// The trainer clamps `logit_scale` to at most ln(100) after every step (open_clip's clamp).
pub const MAX_LOGIT_SCALE: f64 = 4.605_170_185_988_092;
/// SigLIP's initial `logit_scale`: ln(10).
pub const SIGLIP_INIT_LOGIT_SCALE: f64 = std::f64::consts::LN_10;
/// SigLIP's initial logit bias.
pub const SIGLIP_INIT_LOGIT_BIAS: f64 = -10.0;

fn labels(n: i64, offset: i64, like: &Tensor) -> Tensor {
    Tensor::arange_start(offset, offset + n, (Kind::Int64, like.device()))
}

fn symmetric_cross_entropy(logits_per_image: &Tensor, logits_per_text: &Tensor, labels: &Tensor) -> Tensor {
    let ce = |logits: &Tensor| logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, 0.0);
    (ce(logits_per_image) + ce(logits_per_text)) / 2.0
}

/// Symmetric cross-entropy over `scale · I·Tᵀ` with matching pairs on the diagonal: the mean of
/// the image→text and text→image losses.
///
/// # Shapes
/// `image`, `text`: `[n, d]` (normalised); `scale`: `[]`, already exponentiated. Returns `[]`.
pub fn clip_loss(image: &Tensor, text: &Tensor, scale: &Tensor) -> Tensor {
    let logits_per_image = scale * image.matmul(&text.tr());
    let logits_per_text = scale * text.matmul(&image.tr());
    symmetric_cross_entropy(&logits_per_image, &logits_per_text, &labels(image.size()[0], 0, image))
}

/// [`clip_loss`] on one rank of many, over features gathered from all ranks (`all_*`: every
/// rank's batch concatenated in rank order, this rank's at block `rank`).
///
/// With `local_loss`, this rank's rows are scored against all gathered columns, labels offset
/// by `rank · n` (cost O(n·N) per rank); otherwise every rank computes the full N×N loss. For the
/// gradient to reach every rank's features, gather with gradient, or (without `local_loss`) put
/// the local features back into their block with [`with_local_block`].
pub fn clip_loss_gathered(
    image: &Tensor,
    text: &Tensor,
    all_image: &Tensor,
    all_text: &Tensor,
    scale: &Tensor,
    rank: usize,
    local_loss: bool,
) -> Tensor {
    if local_loss {
        let n = image.size()[0];
        let logits_per_image = scale * image.matmul(&all_text.tr());
        let logits_per_text = scale * text.matmul(&all_image.tr());
        symmetric_cross_entropy(&logits_per_image, &logits_per_text, &labels(n, n * rank as i64, image))
    } else {
        let logits_per_image = scale * all_image.matmul(&all_text.tr());
        let logits_per_text = logits_per_image.tr();
        symmetric_cross_entropy(&logits_per_image, &logits_per_text, &labels(all_image.size()[0], 0, image))
    }
}

/// Replaces block `rank` of features gathered without gradient by the local features, which
/// carry it (open_clip's `gather_features` without `gather_with_grad`).
pub fn with_local_block(gathered: &Tensor, local: &Tensor, rank: usize) -> Tensor {
    let world_size = gathered.size()[0] / local.size()[0];
    let mut blocks = gathered.chunk(world_size, 0);
    blocks[rank] = local.shallow_clone();
    Tensor::cat(&blocks, 0)
}

/// SigLIP's pairwise sigmoid loss of one image block against one text block, summed over pairs
/// and divided by the number of images. `positives`: the blocks are the same batch, so the
/// diagonal pairs match; otherwise every pair is a negative.
fn sigmoid_block(image: &Tensor, text: &Tensor, scale: &Tensor, bias: &Tensor, positives: bool) -> Tensor {
    let n = image.size()[0];
    let logits = scale * image.matmul(&text.tr()) + bias;
    let options = (image.kind(), image.device());
    let mut signs = -Tensor::ones([n, text.size()[0]], options);
    if positives {
        signs += 2.0 * Tensor::eye(n, options);
    }
    -(signs * logits).log_sigmoid().sum(image.kind()) / n as f64
}

/// SigLIP's sigmoid loss (Zhai et al. 2023): each image-text pair is a binary decision.
///
/// # Shapes
/// `image`, `text`: `[n, d]`; `scale` (exponentiated), `bias`: `[]`. Returns `[]`.
pub fn siglip_loss(image: &Tensor, text: &Tensor, scale: &Tensor, bias: &Tensor) -> Tensor {
    sigmoid_block(image, text, scale, bias, true)
}

/// [`siglip_loss`] on one rank of many: this rank's images against every rank's texts (`all_text`
/// in rank order), positives only in this rank's own block. Equal to open_clip's neighbour-exchange
/// forms; gather `all_text` with gradient so each rank's texts get the gradients of every rank.
pub fn siglip_loss_gathered(image: &Tensor, all_text: &Tensor, scale: &Tensor, bias: &Tensor, rank: usize) -> Tensor {
    let world_size = all_text.size()[0] / image.size()[0];
    all_text
        .chunk(world_size, 0)
        .iter()
        .enumerate()
        .map(|(block, text)| sigmoid_block(image, text, scale, bias, block == rank))
        .reduce(|a, b| a + b)
        .expect("at least one rank")
}

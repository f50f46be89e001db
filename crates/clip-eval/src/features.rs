//! Image features of a whole labelled split, computed batch by batch on the model's device and
//! kept on the CPU: projected (what zero-shot classification compares with the text side) or
//! before the projection (what the paper's linear probe uses for ViTs).

use clip_data::{Batch, SkipCounts};
use clip_model::{ClipModel, l2_normalize};
use clip_tensor::precision::{Precision, autocast};
use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

/// Which image representation to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// `encode_image`, L2-normalised.
    Projected,
    /// The ViT's pooled features before `proj`; a ResNet's attention pool ends in its projection,
    /// so ResNets give their (unnormalised) embedding.
    Unprojected,
}

/// Features and labels of a split.
#[derive(Debug)]
pub struct Features {
    /// `[n, dim]` float32.
    pub features: Tensor,
    /// `[n]` int64.
    pub labels: Tensor,
    /// Samples the loader skipped (unreadable images), by reason.
    pub skipped: SkipCounts,
}

/// Runs the image tower over every batch. `progress` hears the samples done after each batch.
pub fn extract(
    model: &ClipModel,
    batches: impl Iterator<Item = clip_data::Result<Batch>>,
    kind: FeatureKind,
    device: Device,
    precision: Precision,
    mut progress: impl FnMut(usize),
) -> Result<Features> {
    let _guard = tch::no_grad_guard();
    let (mut rows, mut labels, mut skipped) = (Vec::new(), Vec::new(), SkipCounts::default());
    let mut done = 0;
    for batch in batches {
        let batch = batch?;
        skipped.merge(&batch.skipped);
        let images = batch.images.to_device(device);
        let features = autocast(device, precision, || match kind {
            FeatureKind::Projected => l2_normalize(&model.encode_image(&images).to_kind(Kind::Float)),
            FeatureKind::Unprojected => model.encode_image_unprojected(&images).unwrap_or_else(|| model.encode_image(&images)),
        })?;
        rows.push(features.to_kind(Kind::Float).to_device(Device::Cpu));
        labels.push(batch.labels.ok_or_else(|| Error::Task("the split has no class labels".into()))?);
        done += batch.keys.len();
        progress(done);
    }
    if rows.is_empty() {
        return Err(Error::Task("the split yielded no images".into()));
    }
    Ok(Features { features: Tensor::cat(&rows, 0), labels: Tensor::cat(&labels, 0), skipped })
}

//! Zero-shot image-text retrieval (Flickr30k, MSCOCO style): every image with its several
//! captions; each caption queries the images ("image retrieval") and each image the captions
//! ("text retrieval"); a query scores a hit at k when any of its positives ranks in the top k
//! (CLIP_benchmark's `zeroshot_retrieval`).

use clip_data::{Batch, SkipCounts};
use clip_model::{ClipModel, l2_normalize};
use clip_tensor::precision::{Precision, autocast};
use clip_tokenizer::TextTokenizer;
use tch::{Device, Kind, Tensor};

use crate::Result;
use crate::metrics::recall_at_k;

/// Recall@k both ways, as fractions.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalScores {
    /// Images scored.
    pub images: usize,
    /// Captions scored.
    pub texts: usize,
    /// Per k: fraction of captions whose image is among the k best images.
    pub image_recall: Vec<(i64, f64)>,
    /// Per k: fraction of images with one of their captions among the k best captions.
    pub text_recall: Vec<(i64, f64)>,
    /// Samples the loader skipped.
    pub skipped: SkipCounts,
}

/// Embeds every image and caption of `batches` (loaded with `TextMode::Captions`; a sample's
/// caption text holds one caption per line) and scores recall at each of `ks`.
pub fn evaluate(
    model: &ClipModel,
    tokenizer: &TextTokenizer,
    batches: impl Iterator<Item = clip_data::Result<Batch>>,
    ks: &[i64],
    device: Device,
    precision: Precision,
    mut progress: impl FnMut(usize),
) -> Result<RetrievalScores> {
    let _guard = tch::no_grad_guard();
    crate::zeroshot::check_tokenizer(&model.config.text, tokenizer)?;
    let (mut images, mut texts, mut owner) = (Vec::new(), Vec::new(), Vec::new());
    let mut skipped = SkipCounts::default();
    let mut done = 0;
    for batch in batches {
        let batch = batch?;
        skipped.merge(&batch.skipped);
        let pixels = batch.images.to_device(device);
        images.push(autocast(device, precision, || l2_normalize(&model.encode_image(&pixels).to_kind(Kind::Float)))?.to_device(Device::Cpu));
        let mut captions = Vec::new();
        for (i, text) in batch.captions.iter().enumerate() {
            for line in text.lines() {
                captions.push(line.to_owned());
                owner.push((done + i) as i64);
            }
        }
        let ids = crate::zeroshot::token_ids(model, tokenizer, &captions, device)?;
        texts.push(autocast(device, precision, || l2_normalize(&model.encode_text(&ids).to_kind(Kind::Float)))?.to_device(Device::Cpu));
        done += batch.keys.len();
        progress(done);
    }
    if images.is_empty() {
        return Err(crate::Error::Task("the split yielded no images".into()));
    }
    let (images, texts) = (Tensor::cat(&images, 0), Tensor::cat(&texts, 0));
    let scores = texts.matmul(&images.transpose(0, 1));
    let owner = Tensor::from_slice(&owner);
    let positives = owner.view([-1, 1]).eq_tensor(&Tensor::arange(images.size()[0], (Kind::Int64, Device::Cpu)).view([1, -1]));
    let mut image_recall = Vec::new();
    let mut text_recall = Vec::new();
    for &k in ks {
        image_recall.push((k, recall_at_k(&scores, &positives, k)?));
        text_recall.push((k, recall_at_k(&scores.transpose(0, 1), &positives.transpose(0, 1), k)?));
    }
    Ok(RetrievalScores { images: images.size()[0] as usize, texts: texts.size()[0] as usize, image_recall, text_recall, skipped })
}

//! Patch dropout (FLIP, Li et al. 2023, arXiv 2212.00794): in training, each image keeps a random
//! subset of its patch tokens, taken after the positional embedding, so that every later layer
//! runs on fewer tokens. open_clip 3.3.0's `PatchDropout` (`transformer.py`) keeps the class token
//! (`exclude_first_token`) and `max(1, int(patches · (1 − p)))` patches chosen by
//! `torch.randn(b, patches).topk(k)`; timm 1.0.31's `patch_dropout_forward` the same number after
//! its prefix tokens (none in a SigLIP tower).
//!
//! The draw is separate from the operation: [`draw_kept`] turns one seed per image (the data
//! loader's addressed stream for that sample, so that a run stays deterministic, resumable and
//! the same on any number of ranks) into kept indices, and the towers' `*_with` entry points take
//! those indices. Kept patches are in ascending order; the order is immaterial to every pooling
//! built here (class token, mean, attention pools), and open_clip's `topk` order is random anyway.
//! Without indices nothing is dropped: inference (`encode_image`) never drops.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Patches kept of `patches` at drop probability `prob`: `max(1, ⌊patches · (1 − prob)⌋)`,
/// computed in f64 as Python does.
pub fn kept_patches(patches: i64, prob: f64) -> i64 {
    ((patches as f64 * (1.0 - prob)) as i64).max(1)
}

/// The kept patch indices of each image: `[seeds.len(), kept_patches(patches, prob)]` int64, each
/// row distinct indices in `0..patches`, ascending, drawn from a ChaCha8 stream seeded by that
/// image's seed (the same seed gives the same row on every machine).
pub fn draw_kept(seeds: &[u64], patches: i64, prob: f64) -> Tensor {
    let k = kept_patches(patches, prob);
    let mut rows = Vec::with_capacity(seeds.len() * k as usize);
    for &seed in seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut row: Vec<i64> = rand::seq::index::sample(&mut rng, patches as usize, k as usize).into_iter().map(|i| i as i64).collect();
        row.sort_unstable();
        rows.extend(row);
    }
    Tensor::from_slice(&rows).view([seeds.len() as i64, k])
}

/// `xs` `[b, prefix + patches, d]` with only the `prefix` tokens and the `kept` patches
/// (`[b, k]` indices into the patches): `[b, prefix + k, d]`.
///
/// # Panics
/// If `kept`'s batch differs from `xs`'s or an index is out of range.
pub fn keep_tokens(xs: &Tensor, kept: &Tensor, prefix: i64) -> Tensor {
    let (b, t, d) = xs.size3().expect("tokens are 3-d");
    let k = kept.size()[1];
    assert_eq!(kept.size()[0], b, "one row of kept patches per image");
    let index = kept.to_device(xs.device()).to_kind(Kind::Int64).unsqueeze(-1).expand([b, k, d], false);
    let patches = xs.narrow(1, prefix, t - prefix).gather(1, &index, false); // [b, k, d]
    if prefix == 0 { patches } else { Tensor::cat(&[xs.narrow(1, 0, prefix), patches], 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_counts_follow_open_clip() {
        assert_eq!(kept_patches(49, 0.5), 24); // ViT-B-32: int(24.5)
        assert_eq!(kept_patches(16, 0.5), 8);
        assert_eq!(kept_patches(196, 0.75), 49);
        assert_eq!(kept_patches(3, 0.9), 1); // never none
        assert_eq!(kept_patches(10, 0.0), 10);
    }

    #[test]
    fn draws_are_distinct_sorted_per_image_and_reproducible() {
        let seeds: Vec<u64> = (0..64).map(|i| i * 7919 + 3).collect();
        let kept = draw_kept(&seeds, 49, 0.5);
        assert_eq!(kept.size(), [64, 24]);
        let rows: Vec<Vec<i64>> = (0..64).map(|i| Vec::<i64>::try_from(kept.get(i)).unwrap()).collect();
        for row in &rows {
            assert!(row.windows(2).all(|w| w[0] < w[1]), "ascending and distinct: {row:?}");
            assert!(row.iter().all(|&i| (0..49).contains(&i)));
        }
        let distinct: std::collections::HashSet<&Vec<i64>> = rows.iter().collect();
        assert_eq!(distinct.len(), 64, "different images keep different patches");
        assert_eq!(Vec::<i64>::try_from(draw_kept(&seeds, 49, 0.5).view([-1])).unwrap(), rows.concat());
        // Every patch is kept about half the time.
        let many: Vec<u64> = (0..4000).collect();
        let counts = Tensor::zeros([49], (Kind::Int64, tch::Device::Cpu)).index_add(0, &draw_kept(&many, 49, 0.5).view([-1]), &Tensor::ones([4000 * 24], (Kind::Int64, tch::Device::Cpu)));
        let counts = Vec::<i64>::try_from(counts).unwrap();
        let expected = 4000.0 * 24.0 / 49.0;
        assert!(counts.iter().all(|&c| (c as f64 - expected).abs() < 0.1 * expected), "{counts:?}");
    }

    #[test]
    fn keep_tokens_keeps_the_prefix_and_gathers_the_patches() {
        let xs = Tensor::arange(2 * 5 * 3, (Kind::Float, tch::Device::Cpu)).view([2, 5, 3]);
        let kept = Tensor::from_slice(&[0i64, 3, 1, 2]).view([2, 2]);
        let out = keep_tokens(&xs, &kept, 1);
        assert_eq!(out.size(), [2, 3, 3]);
        let expect = Tensor::stack(&[xs.get(0).get(0), xs.get(0).get(1), xs.get(0).get(4), xs.get(1).get(0), xs.get(1).get(2), xs.get(1).get(3)], 0).view([2, 3, 3]);
        assert!(out.equal(&expect));
        assert!(keep_tokens(&xs, &kept, 0).equal(&Tensor::stack(&[xs.get(0).get(0), xs.get(0).get(3), xs.get(1).get(1), xs.get(1).get(2)], 0).view([2, 2, 3])));
    }
}

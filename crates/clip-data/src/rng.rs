//! Independent random streams addressed by integers, so that a draw depends on what it is for
//! (seed, epoch, sample index…) and never on which thread makes it or when.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser of `seed` combined with `index`: distinct inputs give unrelated outputs.
pub(crate) fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream for `index` under `seed`.
pub(crate) fn stream(seed: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed, index))
}

/// The stream addressed by a path of integers (e.g. seed, epoch, rank, sample).
pub(crate) fn stream_at(seed: u64, path: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(path.iter().fold(seed, |acc, &p| mix(acc, p)))
}

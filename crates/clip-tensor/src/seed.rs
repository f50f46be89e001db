//! Seeding every random number generator a run uses, in one call.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The host-side RNG (shuffling, augmentation choices). ChaCha8 gives the same stream on every
/// platform and `rand` version, which reproducible runs need and `StdRng` does not promise.
pub type HostRng = ChaCha8Rng;

/// Seeds libtorch's CPU generator and every CUDA device's generator (`at::manual_seed`), and
/// returns a host RNG seeded from the same value.
pub fn seed_everything(seed: u64) -> HostRng {
    // libtorch takes the seed's bits as i64; the cast keeps all 64 of them.
    tch::manual_seed(seed as i64);
    HostRng::seed_from_u64(seed)
}

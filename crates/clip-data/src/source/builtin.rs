//! The built-in dataset as a source: fresh scenes every epoch, never the same sample twice.

use super::{Indexed, Payload, Record, Text};
use crate::builtin::BuiltinDataset;

/// [`BuiltinDataset`] with an epoch length.
#[derive(Debug, Clone)]
pub struct BuiltinSource {
    dataset: BuiltinDataset,
    samples: u64,
}

impl BuiltinSource {
    /// Scenes of `image_size` pixels from `seed`, `samples` per epoch.
    pub fn new(seed: u64, image_size: u32, samples: u64) -> Self {
        Self { dataset: BuiltinDataset::new(seed, image_size), samples }
    }

}

impl Indexed for BuiltinSource {
    fn len(&self) -> u64 {
        self.samples
    }

    fn record(&self, epoch: u64, index: u64) -> Record {
        let n = epoch * self.samples + index;
        let sample = self.dataset.sample(n);
        Record { key: format!("builtin/{n}"), payload: Payload::Image(sample.image), text: Text::Caption(sample.caption) }
    }
}

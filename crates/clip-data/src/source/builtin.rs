//! The built-in dataset as sources: the training stream (fresh scenes every epoch, never the same
//! sample twice) and each held-out task's labelled evaluation draws.

use super::{Indexed, Payload, Record, Text};
use crate::builtin::{BuiltinDataset, BuiltinTask};

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
        Record { key: format!("builtin/{n}"), payload: Payload::Image(sample.image), text: Text::Caption(sample.caption), json: None }
    }
}

/// The first `samples` evaluation draws of a held-out task, labelled.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinTaskSource {
    /// The task.
    pub task: BuiltinTask,
    /// Draws.
    pub samples: u64,
    /// Side of the rendered images.
    pub image_size: u32,
}

impl Indexed for BuiltinTaskSource {
    fn len(&self) -> u64 {
        self.samples
    }

    fn record(&self, _epoch: u64, index: u64) -> Record {
        let (image, label) = self.task.sample(index, self.image_size);
        Record { key: format!("builtin-{}/{index}", self.task.name()), payload: Payload::Image(image), text: Text::Label(label as i64), json: None }
    }
}

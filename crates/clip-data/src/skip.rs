//! Why samples are skipped, and how many: the loader never stops an epoch for a bad sample, but it
//! never hides one either.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Why a sample (or a whole shard) was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The image bytes are corrupt, truncated or in no supported format.
    CorruptImage,
    /// The image has more pixels than [`crate::preprocess::MAX_PIXELS`].
    TooLarge,
    /// The decoder panicked; the panic was contained.
    DecoderPanic,
    /// The sample has no image member, or its image file cannot be read.
    MissingImage,
    /// The sample has no caption (or label) where one is needed.
    MissingCaption,
    /// The shard ended in the middle of this sample.
    TruncatedTar,
    /// A shard that could not be opened or read from its start (counted once per shard).
    UnreadableShard,
}

impl SkipReason {
    /// Every reason, in report order.
    pub const ALL: [Self; 7] = [
        Self::CorruptImage,
        Self::TooLarge,
        Self::DecoderPanic,
        Self::MissingImage,
        Self::MissingCaption,
        Self::TruncatedTar,
        Self::UnreadableShard,
    ];

    /// The reason's name in reports and `metrics.jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CorruptImage => "corrupt_image",
            Self::TooLarge => "too_large",
            Self::DecoderPanic => "decoder_panic",
            Self::MissingImage => "missing_image",
            Self::MissingCaption => "missing_caption",
            Self::TruncatedTar => "truncated_tar",
            Self::UnreadableShard => "unreadable_shard",
        }
    }

    /// The reason a decoding error stands for.
    pub(crate) fn of_decode(error: &Error) -> Self {
        match error {
            Error::TooLarge { .. } => Self::TooLarge,
            Error::DecoderPanic => Self::DecoderPanic,
            _ => Self::CorruptImage,
        }
    }
}

/// Counts by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipCounts(pub BTreeMap<SkipReason, u64>);

impl SkipCounts {
    /// Counts one more for `reason`.
    pub fn add(&mut self, reason: SkipReason) {
        *self.0.entry(reason).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (&reason, &n) in &other.0 {
            *self.0.entry(reason).or_default() += n;
        }
    }

    /// Skips of every reason but whole shards: the samples lost.
    pub fn samples(&self) -> u64 {
        self.0.iter().filter(|(r, _)| **r != SkipReason::UnreadableShard).map(|(_, n)| n).sum()
    }

    /// The count for `reason`.
    pub fn get(&self, reason: SkipReason) -> u64 {
        self.0.get(&reason).copied().unwrap_or(0)
    }
}

impl fmt::Display for SkipCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.0.iter().map(|(r, n)| format!("{} {n}", r.name())).collect();
        f.write_str(&parts.join(", "))
    }
}

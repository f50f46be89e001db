//! Where a loader stands in an epoch, small enough to save in every checkpoint, exact enough that a
//! restored loader yields the very next sample and the same stream after it.

use serde::{Deserialize, Serialize};

/// A reader's place in its sequence of shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShardCursor {
    /// Index into the reader's shard sequence for the epoch.
    pub shard: u64,
    /// Samples of that shard already taken.
    pub sample: u64,
}

/// Where a streamed source stands: shuffle windows are cut from each reader's stream in turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Index of the current shuffle window in the epoch.
    pub window: u64,
    /// Items of that window already taken.
    pub offset: u64,
    /// The reader the current window comes from.
    pub reader: usize,
    /// Each reader's cursor at the start of its next window not yet finished.
    pub readers: Vec<ShardCursor>,
}

/// A loader's position: restoring it yields the items after the last batch handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The epoch.
    pub epoch: u64,
    /// Items (samples and skips) of this rank's epoch stream already consumed; also the ordinal
    /// that seeds the next item's random crop.
    pub consumed: u64,
    /// Samples handed out in batches this epoch (for the epoch's sample quota).
    pub emitted: u64,
    /// For streamed sources, the reader state; indexed sources need only `consumed`.
    pub stream: Option<StreamPosition>,
}

impl Position {
    /// The start of `epoch`.
    pub fn start(epoch: u64) -> Self {
        Self { epoch, consumed: 0, emitted: 0, stream: None }
    }
}

//! Cutting a source into output parts, for jobs that write one file set per part and are run by
//! several ranks and resumed part by part (`clip embed --source`): one part per shard of a
//! WebDataset, or per `part_size` consecutive samples of an indexed source. A part is read in the
//! source's own order, whatever the number of ranks, so that the part written is the same.

use std::sync::Arc;

use super::{Indexed, Record, Source};
use crate::{Error, Result};

/// What a part covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartSpan {
    /// One shard of a shard set (its index).
    Shard(usize),
    /// Samples `start..end` of an indexed source.
    Indices {
        /// First sample.
        start: u64,
        /// One past the last sample.
        end: u64,
    },
}

/// One part of a [`PartPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Its place in the plan, from 0: names its output files.
    pub index: usize,
    /// What it reads.
    pub span: PartSpan,
}

/// A source cut into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartPlan {
    parts: Vec<Part>,
}

impl PartPlan {
    /// One part per shard for shard sets; `part_size` samples per part (the last may be shorter)
    /// for indexed sources.
    pub fn new(source: &Source, part_size: u64) -> Result<Self> {
        let parts = match source {
            Source::Shards(shards) => (0..shards.len()).map(|i| Part { index: i, span: PartSpan::Shard(i) }).collect(),
            Source::Indexed(indexed) => {
                if part_size == 0 {
                    return Err(Error::Source("a part must hold at least one sample".into()));
                }
                let len = indexed.len();
                (0..len.div_ceil(part_size))
                    .map(|p| Part {
                        index: p as usize,
                        span: PartSpan::Indices { start: p * part_size, end: ((p + 1) * part_size).min(len) },
                    })
                    .collect()
            }
        };
        Ok(Self { parts })
    }

    /// Every part, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Number of parts.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether there are none (an empty source).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The parts `rank` of `world_size` takes: every `world_size`-th, from `rank` on (as
    /// clip-retrieval deals them), so ranks share the work without talking to each other.
    pub fn for_rank(&self, rank: usize, world_size: usize) -> impl Iterator<Item = &Part> {
        self.parts.iter().skip(rank).step_by(world_size.max(1))
    }

    /// The samples of `part`, as a source of their own (`source` is the one the plan was made for).
    pub fn source(source: &Source, part: &Part) -> Result<Source> {
        match (source, part.span) {
            (Source::Shards(shards), PartSpan::Shard(i)) if i < shards.len() => Ok(Source::Shards(shards.select(&[i]))),
            (Source::Indexed(inner), PartSpan::Indices { start, end }) if start <= end && end <= inner.len() => {
                Ok(Source::Indexed(Arc::new(Slice { inner: Arc::clone(inner), start, len: end - start })))
            }
            _ => Err(Error::Source(format!("part {} ({:?}) is not a part of {source:?}", part.index, part.span))),
        }
    }
}

/// A run of consecutive samples of an indexed source.
struct Slice {
    inner: Arc<dyn Indexed>,
    start: u64,
    len: u64,
}

impl Indexed for Slice {
    fn len(&self) -> u64 {
        self.len
    }

    fn record(&self, epoch: u64, index: u64) -> Record {
        self.inner.record(epoch, self.start + index)
    }
}

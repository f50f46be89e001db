//! The bucket plan of gradient averaging: which spans of gradient storage are all-reduced together,
//! and in which order. Pure arithmetic over where each gradient lies, so every rank (with the same
//! parameters) derives the same plan, and the overlapped and the plain reduction share it.

use std::collections::BTreeMap;

/// Where one parameter's gradient lies: `numel` elements from `offset` of a storage, named by the
/// first parameter whose gradient lies in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradPlace {
    /// Index of the first parameter whose gradient shares this storage.
    pub storage: usize,
    /// Offset in the storage, in elements.
    pub offset: i64,
    /// Elements.
    pub numel: i64,
}

/// One bucket: `len` elements from `offset` of the storage of parameter `anchor`'s gradient,
/// reduced by one all-reduce once the gradients of `members` are final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// A parameter whose gradient's storage the bucket spans.
    pub anchor: usize,
    /// First element, in the storage.
    pub offset: i64,
    /// Elements.
    pub len: i64,
    /// The parameters whose gradients (or pieces of them) lie in the bucket.
    pub members: Vec<usize>,
}

/// Buckets in storage order, and the order in which they are launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPlan {
    /// The buckets, by storage, then offset.
    pub buckets: Vec<Bucket>,
    /// Bucket indices in launch order.
    pub order: Vec<usize>,
}

impl BucketPlan {
    /// Cuts each storage's gradients, in storage order, into buckets of at most `cap` elements,
    /// as torch's DDP fills its buckets: a bucket is closed before a gradient that would overflow
    /// it, and a gradient longer than `cap` is cut into pieces of `cap`, each a bucket of its
    /// own but the last, which later gradients may join. A bucket spans its members and any gap
    /// between them (alignment padding), no more. `places` are listed in the order their
    /// gradients are expected to become final in a backward pass; buckets are launched in the
    /// order they are expected to complete (that of their last member), ties in storage order.
    /// Empty gradients belong to no bucket.
    pub fn new(places: &[GradPlace], cap: i64) -> Result<Self, String> {
        if cap < 1 {
            return Err(format!("bucket size must be at least one element, got {cap}"));
        }
        let mut storages: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, place) in places.iter().enumerate() {
            if place.storage >= places.len() || places[place.storage].storage != place.storage {
                return Err(format!("parameter #{i}: storage #{} is not one of the parameters' first", place.storage));
            }
            if place.numel > 0 {
                storages.entry(place.storage).or_default().push(i);
            }
        }
        let mut buckets = Vec::new();
        for (anchor, mut members) in storages {
            members.sort_by_key(|&i| places[i].offset);
            for pair in members.windows(2) {
                let (a, b) = (&places[pair[0]], &places[pair[1]]);
                if a.offset + a.numel > b.offset {
                    return Err(format!("the gradients of parameters #{} and #{} overlap in storage", pair[0], pair[1]));
                }
            }
            let mut open: Option<Bucket> = None;
            for i in members {
                let end = places[i].offset + places[i].numel;
                if open.as_ref().is_some_and(|b| end - b.offset > cap) {
                    buckets.extend(open.take());
                }
                let mut start = places[i].offset;
                while open.is_none() && end - start > cap {
                    buckets.push(Bucket { anchor, offset: start, len: cap, members: vec![i] });
                    start += cap;
                }
                match &mut open {
                    Some(b) => {
                        b.len = end - b.offset;
                        b.members.push(i);
                    }
                    None => open = Some(Bucket { anchor, offset: start, len: end - start, members: vec![i] }),
                }
            }
            buckets.extend(open);
        }
        let mut order: Vec<usize> = (0..buckets.len()).collect();
        order.sort_by_key(|&b| buckets[b].members.iter().max().copied()); // Stable: ties in storage order.
        Ok(Self { buckets, order })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(storage: usize, offset: i64, numel: i64) -> GradPlace {
        GradPlace { storage, offset, numel }
    }

    /// (offset, len, members) of each bucket.
    fn spans(plan: &BucketPlan) -> Vec<(i64, i64, Vec<usize>)> {
        plan.buckets.iter().map(|b| (b.offset, b.len, b.members.clone())).collect()
    }

    #[test]
    fn buckets_fill_to_the_cap_and_close_at_a_gradient() {
        // One storage, in storage order a (0..4), b (4..10, padded to 12), c (12..15); listed
        // in the order c, b, a (the backward pass reaches them in reverse).
        let places = [place(0, 12, 3), place(0, 4, 6), place(0, 0, 4)];
        let plan = BucketPlan::new(&places, 10).unwrap();
        assert_eq!(spans(&plan), vec![(0, 10, vec![2, 1]), (12, 3, vec![0])]);
        // c is final first: its bucket goes first.
        assert_eq!(plan.order, vec![1, 0]);
        let plan = BucketPlan::new(&places, 100).unwrap();
        assert_eq!(spans(&plan), vec![(0, 15, vec![2, 1, 0])]);
    }

    #[test]
    fn a_gradient_over_the_cap_is_cut_and_its_tail_is_joined() {
        // a: 0..25 with cap 10: two whole pieces, then its tail 20..25 joined by b (25..28).
        let places = [place(0, 0, 25), place(0, 25, 3), place(0, 28, 9)];
        let plan = BucketPlan::new(&places, 10).unwrap();
        assert_eq!(spans(&plan), vec![(0, 10, vec![0]), (10, 10, vec![0]), (20, 8, vec![0, 1]), (28, 9, vec![2])]);
        assert!(plan.buckets.iter().all(|b| b.len <= 10));
        assert_eq!(plan.order, vec![0, 1, 2, 3]);
    }

    #[test]
    fn storages_are_bucketed_apart_and_ordered_by_their_last_member() {
        // Two storages; #1 shares #0's; #2 has its own; #3 is empty. Listed order: 0, 2, 1.
        let places = [place(0, 0, 4), place(0, 4, 4), place(2, 0, 6), place(3, 0, 0)];
        let plan = BucketPlan::new(&places, 5).unwrap();
        assert_eq!(spans(&plan), vec![(0, 4, vec![0]), (4, 4, vec![1]), (0, 5, vec![2]), (5, 1, vec![2])]);
        assert_eq!(plan.buckets.iter().map(|b| b.anchor).collect::<Vec<_>>(), vec![0, 0, 2, 2]);
        assert_eq!(plan.order, vec![0, 1, 2, 3]);
        // Interleaved: storage 0 holds #0 and #2, storage 1 holds #1 and #3.
        let places = [place(0, 0, 4), place(1, 0, 6), place(0, 4, 4), place(1, 6, 1)];
        let plan = BucketPlan::new(&places, 5).unwrap();
        assert_eq!(spans(&plan), vec![(0, 4, vec![0]), (4, 4, vec![2]), (0, 5, vec![1]), (5, 2, vec![1, 3])]);
        // They complete at members 0, 2, 1 and 3.
        assert_eq!(plan.order, vec![0, 2, 1, 3]);
    }

    #[test]
    fn every_element_of_every_gradient_is_in_exactly_one_bucket() {
        let sizes = [7i64, 1, 30, 2, 2, 64, 5, 11, 1, 9];
        let mut places = Vec::new();
        let mut offset = 0;
        for &n in &sizes {
            places.push(place(0, offset, n));
            offset += (n + 3) / 4 * 4; // aligned as AdamW aligns its flat buffer
        }
        for cap in [1, 3, 8, 16, 1000] {
            let plan = BucketPlan::new(&places, cap).unwrap();
            let mut covered = vec![0; offset as usize];
            for b in &plan.buckets {
                assert!(b.len <= cap && b.len > 0, "cap {cap}: {b:?}");
                for k in b.offset..b.offset + b.len {
                    covered[k as usize] += 1;
                }
                for &m in &b.members {
                    let p = places[m];
                    assert!(p.offset < b.offset + b.len && b.offset < p.offset + p.numel, "cap {cap}: #{m} not in {b:?}");
                }
            }
            for p in &places {
                assert!(covered[p.offset as usize..(p.offset + p.numel) as usize].iter().all(|&c| c == 1), "cap {cap}: {p:?}");
            }
            let mut sorted = plan.order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..plan.buckets.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn overlapping_gradients_and_a_zero_cap_are_refused() {
        let err = BucketPlan::new(&[place(0, 0, 4), place(0, 2, 4)], 8).unwrap_err();
        assert!(err.contains("overlap"), "{err}");
        assert!(BucketPlan::new(&[place(0, 0, 4)], 0).unwrap_err().contains("at least one"));
        assert!(BucketPlan::new(&[place(1, 0, 4), place(0, 0, 4)], 8).unwrap_err().contains("storage #1"));
    }
}

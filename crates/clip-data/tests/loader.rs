use std::collections::HashSet;

use clip_data::source::{Source, SourceOptions};
use clip_data::transform::TrainTransform;
use clip_data::{Batch, Error, ImageTransform, Loader, LoaderConfig, Position, TextMode};
use tch::Tensor;

use crate::support::{caption_members, jpeg, tar, write_shard};

fn config(batch_size: usize, threads: usize) -> LoaderConfig {
    let mut config = LoaderConfig::new(batch_size, ImageTransform::Train(TrainTransform::open_clip(24)), TextMode::Tokens { context_length: 16 });
    config.threads = threads;
    config.seed = 11;
    config
}

fn builtin(samples: u64) -> Source {
    Source::parse("builtin", &SourceOptions { builtin_samples: samples, builtin_image_size: 32, ..SourceOptions::default() }).unwrap()
}

/// Shards of 9 samples each (7 shards: 63 samples), in a temp dir kept alive by the caller.
fn shards(dir: &std::path::Path, n: usize) -> Source {
    for i in 0..n {
        write_shard(dir, &format!("shard-{i:02}.tar"), 9);
    }
    let pattern = format!("wds:{}/shard-{{00..{:02}}}.tar", dir.display(), n - 1);
    Source::parse(&pattern, &SourceOptions::default()).unwrap()
}

fn same(a: &Batch, b: &Batch) -> bool {
    a.keys == b.keys
        && a.images.equal(&b.images)
        && a.texts.as_ref().zip(b.texts.as_ref()).is_none_or(|(x, y): (&Tensor, &Tensor)| x.equal(y))
        && a.position == b.position
}

fn all(loader: &Loader, position: &Position) -> Vec<Batch> {
    loader.resume(position).unwrap().map(Result::unwrap).collect()
}

#[test]
fn batches_depend_on_the_seed_not_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in [("builtin", builtin(40)), ("shards", shards(dir.path(), 7))] {
        let make = |threads: usize, seed: u64| {
            let mut c = config(4, threads);
            c.seed = seed;
            c.shuffle_window = 5;
            c.workers = 2;
            Loader::new(source.clone(), c).unwrap()
        };
        let one = all(&make(1, 11), &Position::start(3));
        let four = all(&make(4, 11), &Position::start(3));
        assert!(!one.is_empty());
        assert_eq!(one.len(), four.len(), "{name}");
        assert!(one.iter().zip(&four).all(|(a, b)| same(a, b)), "{name}: 1 and 4 threads differ");
        let other_seed = all(&make(4, 12), &Position::start(3));
        assert_ne!(one[0].keys, other_seed[0].keys, "{name}: the seed should change the order");
        let other_epoch = all(&make(1, 11), &Position::start(4));
        assert_ne!(one[0].keys, other_epoch[0].keys, "{name}: each epoch is shuffled anew");
    }
}

#[test]
fn a_restored_position_yields_the_same_remaining_stream() {
    let dir = tempfile::tempdir().unwrap();
    // A window (7) that does not divide the shards (9) or the batch (4): positions fall inside
    // windows and inside shards; one damaged shard puts skips in the stream too.
    let source = shards(dir.path(), 7);
    let Source::Shards(set) = &source else { unreachable!() };
    let mut members = caption_members("x", 4);
    members.insert(2, ("x-bad.jpg".into(), b"not a jpeg".to_vec()));
    members.insert(3, ("x-bad.txt".into(), b"bad".to_vec()));
    std::fs::write(&set.shards()[3], tar(&members)).unwrap();
    for (name, source) in [("builtin", builtin(50)), ("shards", source)] {
        let mut c = config(4, 2);
        c.shuffle_window = 7;
        c.workers = 2;
        let loader = Loader::new(source, c).unwrap();
        let full = all(&loader, &Position::start(1));
        assert!(full.len() >= 10, "{name}: {}", full.len());
        for k in [0, 3, full.len() / 2, full.len() - 2] {
            let rest = all(&loader, &full[k].position);
            assert_eq!(rest.len(), full.len() - k - 1, "{name}: resumed after batch {k}");
            assert!(rest.iter().zip(&full[k + 1..]).all(|(a, b)| same(a, b) && a.skipped == b.skipped), "{name}: after batch {k}");
        }
        // Positions survive a round trip through JSON (they go into checkpoints).
        let json = serde_json::to_string(&full[2].position).unwrap();
        assert_eq!(serde_json::from_str::<Position>(&json).unwrap(), full[2].position);
    }
}

#[test]
fn with_three_ranks_each_sample_appears_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    for (name, source, total) in [("shards", shards(dir.path(), 7), 63), ("builtin", builtin(31), 31)] {
        let mut seen = Vec::new();
        for rank in 0..3 {
            let mut c = config(2, 2);
            c.rank = rank;
            c.world_size = 3;
            c.workers = 2;
            c.drop_last = false;
            for batch in Loader::new(source.clone(), c).unwrap().epoch(5).unwrap() {
                seen.extend(batch.unwrap().keys);
            }
        }
        let distinct: HashSet<&String> = seen.iter().collect();
        assert_eq!((seen.len(), distinct.len()), (total, total), "{name}");
    }
}

#[test]
fn resampled_epochs_have_their_quota_and_repeat_shards() {
    let dir = tempfile::tempdir().unwrap();
    let source = shards(dir.path(), 3);
    let mut c = config(5, 2);
    c.resampled = true;
    c.samples_per_epoch = Some(60);
    c.world_size = 2;
    c.rank = 1;
    let loader = Loader::new(source.clone(), c.clone()).unwrap();
    let batches = all(&loader, &Position::start(0));
    assert_eq!(batches.iter().map(|b| b.keys.len()).sum::<usize>(), 30);
    let keys: Vec<&String> = batches.iter().flat_map(|b| &b.keys).collect();
    assert!(keys.iter().collect::<HashSet<_>>().len() < keys.len(), "27 samples cannot fill 30 without repeats");
    let again = all(&loader, &Position::start(0));
    assert!(batches.iter().zip(&again).all(|(a, b)| same(a, b)));
    c.samples_per_epoch = None;
    assert!(Loader::new(source, c).is_err());
}

#[test]
fn too_many_skips_stop_the_epoch_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = Vec::new();
    for i in 0..300u32 {
        let image = if i % 2 == 0 { jpeg(i) } else { b"garbage".to_vec() };
        members.push((format!("s{i:04}.jpg"), image));
        members.push((format!("s{i:04}.txt"), b"caption".to_vec()));
    }
    std::fs::write(dir.path().join("half-bad.tar"), tar(&members)).unwrap();
    let source = Source::parse(&format!("wds:{}/half-bad.tar", dir.path().display()), &SourceOptions::default()).unwrap();
    let loader = Loader::new(source.clone(), config(8, 2)).unwrap();
    let error = loader.epoch(0).unwrap().find_map(Result::err).expect("the epoch must fail");
    assert!(matches!(error, Error::TooManySkips { .. }), "{error}");
    assert!(error.to_string().contains("corrupt_image"), "{error}");
    // Under a limit that allows it, the same data trains through with every skip counted.
    let mut lenient = config(8, 2);
    lenient.max_skip_fraction = 0.6;
    let loader = Loader::new(source, lenient).unwrap();
    let mut stream = loader.epoch(0).unwrap();
    let batches: Vec<Batch> = stream.by_ref().map(Result::unwrap).collect();
    let yielded: usize = batches.iter().map(|b| b.keys.len()).sum();
    let skipped: u64 = batches.iter().map(|b| b.skipped.samples()).sum::<u64>() + stream.tail().skipped.samples();
    let consumed: u64 = batches.iter().map(|b| b.consumed).sum::<u64>() + stream.tail().consumed;
    assert_eq!((yielded, skipped, consumed), (144, 150, 300)); // 150 good in whole batches of 8, 6 dropped
}

#[test]
fn bad_configurations_are_refused() {
    let mut c = config(4, 1);
    c.rank = 3;
    c.world_size = 3;
    assert!(Loader::new(builtin(10), c).is_err());
    let mut c = config(0, 1);
    c.batch_size = 0;
    assert!(Loader::new(builtin(10), c).is_err());
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(4, 1);
    c.world_size = 4;
    assert!(Loader::new(shards(dir.path(), 3), c).is_err(), "3 shards cannot feed 4 ranks");
}

#[test]
fn sample_seeds_follow_the_sample_not_the_rank_or_a_resume() {
    let one = Loader::new(builtin(24), config(4, 2)).unwrap();
    let batches = all(&one, &Position::start(1));
    let seeds: Vec<u64> = batches.iter().flat_map(|b| b.seeds.clone()).collect();
    let keys: Vec<String> = batches.iter().flat_map(|b| b.keys.clone()).collect();
    assert_eq!(seeds.len(), 24);
    assert_eq!(seeds.iter().collect::<HashSet<_>>().len(), 24, "one seed per sample");
    let by_key: std::collections::HashMap<&String, u64> = keys.iter().zip(seeds.iter().copied()).collect();
    for rank in 0..2 {
        let mut c = config(2, 1);
        (c.world_size, c.rank) = (2, rank);
        for b in all(&Loader::new(builtin(24), c).unwrap(), &Position::start(1)) {
            assert!(b.keys.iter().zip(&b.seeds).all(|(k, s)| by_key[k] == *s), "rank {rank}");
        }
    }
    let resumed: Vec<u64> = all(&one, &batches[1].position).iter().flat_map(|b| b.seeds.clone()).collect();
    assert_eq!(resumed, seeds[8..]);
    let other_epoch: HashSet<u64> = all(&one, &Position::start(2)).iter().flat_map(|b| b.seeds.clone()).collect();
    assert!(seeds.iter().all(|s| !other_epoch.contains(s)), "a new epoch draws anew");
}

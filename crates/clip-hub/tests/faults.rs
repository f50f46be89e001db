use std::fs;
use std::time::{Duration, Instant};

use clip_hub::{Error, Progress, Repo};

use crate::common::{Fixture, WEIGHTS_LEN, ignore, recorder, tree};

const KEY: &str = "org/model/model.safetensors";

#[test]
fn connection_cut_halfway_resumes_in_the_same_call() {
    let fx = Fixture::new();
    fx.server.cut(KEY, WEIGHTS_LEN as u64 / 2, 1);
    let (events, mut sink) = recorder();
    let path = fx
        .hub()
        .get(&Repo::model("org/model"), "model.safetensors", &mut sink)
        .unwrap();
    assert_eq!(
        fs::read(path).unwrap(),
        fx.served("models/org/model/model.safetensors")
    );
    let served = fx.server.bytes_served(KEY);
    assert!(served < WEIGHTS_LEN as u64 * 16 / 10, "served {served}");
    assert_eq!(served, WEIGHTS_LEN as u64);
    let ranges: Vec<_> = fx
        .server
        .log()
        .into_iter()
        .filter_map(|r| r.range)
        .collect();
    assert_eq!(ranges, vec![format!("bytes={}-", WEIGHTS_LEN / 2)]);
    let events = events.borrow();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Progress::Retry { attempt: 1, .. }))
    );
    assert!(events.iter().any(|e| matches!(e, Progress::Start { resumed_from, .. } if *resumed_from == WEIGHTS_LEN as u64 / 2)));
}

#[test]
fn repeated_cuts_still_finish() {
    let fx = Fixture::new();
    fx.server.cut(KEY, 30_000, 6);
    fx.fetch_weights();
    assert_eq!(fx.server.bytes_served(KEY), WEIGHTS_LEN as u64);
}

#[test]
fn left_behind_incomplete_is_resumed() {
    let fx = Fixture::new();
    let have = WEIGHTS_LEN * 6 / 10;
    let partial = fx.leave_partial_weights(have);
    fx.fetch_weights();
    assert_eq!(fx.server.bytes_served(KEY), (WEIGHTS_LEN - have) as u64);
    assert!(!partial.exists());
}

#[test]
fn corrupt_left_behind_incomplete_is_redone_from_zero() {
    let fx = Fixture::new();
    let partial = fx.leave_partial_weights(50_000);
    std::fs::write(&partial, vec![0u8; 50_000]).unwrap();
    fx.fetch_weights();
    assert_eq!(
        fx.server.bytes_served(KEY),
        (WEIGHTS_LEN - 50_000 + WEIGHTS_LEN) as u64
    );
}

#[test]
fn ignored_range_restarts_from_zero() {
    let fx = Fixture::new();
    fx.server.ignore_range(KEY);
    fx.leave_partial_weights(1000);
    fx.fetch_weights();
    assert_eq!(fx.server.bytes_served(KEY), WEIGHTS_LEN as u64);
}

#[test]
fn corrupt_lfs_blob_is_refused_and_nothing_kept() {
    let fx = Fixture::new();
    fx.server.corrupt(KEY);
    let err = fx
        .hub()
        .get(&Repo::model("org/model"), "model.safetensors", &mut ignore)
        .unwrap_err();
    let Error::Checksum {
        algorithm,
        expected,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*algorithm, "sha256");
    assert_eq!(*expected, fx.sha256("org/model", "model.safetensors"));
    assert!(err.to_string().contains("do not match"), "{err}");
    let repo_dir = fx.cache_root().join("models--org--model");
    assert!(tree(&repo_dir.join("snapshots")).is_empty());
    assert!(
        tree(&repo_dir.join("blobs")).is_empty(),
        "{:?}",
        tree(&repo_dir.join("blobs"))
    );
    assert!(!repo_dir.join("refs/main").exists());
}

#[test]
fn corrupt_git_file_is_refused_by_its_blob_id() {
    let fx = Fixture::new();
    fx.server.corrupt("org/model/config.json");
    let err = fx
        .hub()
        .get(&Repo::model("org/model"), "config.json", &mut ignore)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Checksum {
                algorithm: "git blob sha1",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        fx.hub()
            .cache()
            .get(&Repo::model("org/model"), "config.json")
            .is_none()
    );
}

#[test]
fn stalled_server_times_out_and_retries() {
    let fx = Fixture::new();
    fx.server.stall("org/model/config.json", 1);
    let config = clip_hub::HubConfig {
        read_timeout: Duration::from_millis(300),
        ..fx.config()
    };
    let (events, mut sink) = recorder();
    let path = fx
        .hub_with(config)
        .get(&Repo::model("org/model"), "config.json", &mut sink)
        .unwrap();
    assert_eq!(fs::read(path).unwrap(), crate::common::CONFIG);
    assert!(
        events
            .borrow()
            .iter()
            .any(|e| matches!(e, Progress::Retry { .. }))
    );
}

#[test]
fn a_server_that_never_answers_ends_in_a_bounded_error() {
    let fx = Fixture::new();
    fx.server.stall("org/model/config.json", 100);
    let config = clip_hub::HubConfig {
        read_timeout: Duration::from_millis(200),
        retries: 3,
        ..fx.config()
    };
    let start = Instant::now();
    let err = fx
        .hub_with(config)
        .get(&Repo::model("org/model"), "config.json", &mut ignore)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Network { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn two_threads_fetch_once() {
    let fx = Fixture::new();
    fx.server.delay(KEY, Duration::from_millis(800));
    let repo = Repo::model("org/model");
    let results: Vec<(std::path::PathBuf, Vec<Progress>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut events = Vec::new();
                    let path = fx
                        .hub()
                        .get(&repo, "model.safetensors", &mut |p| events.push(p))
                        .unwrap();
                    (path, events)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results[0].0, results[1].0);
    assert_eq!(fx.server.requests("GET", "/cdn/"), 1);
    assert_eq!(fx.server.bytes_served(KEY), WEIGHTS_LEN as u64);
    let waited = results
        .iter()
        .filter(|(_, ev)| ev.iter().any(|e| matches!(e, Progress::Waiting { .. })))
        .count();
    let done = results
        .iter()
        .filter(|(_, ev)| ev.iter().any(|e| matches!(e, Progress::Done { .. })))
        .count();
    assert_eq!((waited, done), (1, 1));
}

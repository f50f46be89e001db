use std::fs;

use clip_hub::{Error, Progress, Repo};

use crate::common::{CONFIG, Fixture, WEIGHTS_LEN, ignore, recorder, tree};

#[test]
fn fresh_fetch_writes_python_layout() {
    let fx = Fixture::new();
    let hub = fx.hub();
    let repo = Repo::model("org/model");
    let (events, mut sink) = recorder();
    let weights = hub.get(&repo, "model.safetensors", &mut sink).unwrap();
    let config = hub.get(&repo, "config.json", &mut sink).unwrap();
    assert_eq!(
        fs::read(&weights).unwrap(),
        fx.served("models/org/model/model.safetensors")
    );
    assert_eq!(fs::read(&config).unwrap(), CONFIG);

    let commit = fx.commit("org/model");
    let sha = fx.sha256("org/model", "model.safetensors");
    let git = fx.git_sha1("org/model", "config.json");
    let dir = fx.cache_root().join("models--org--model");
    assert_eq!(
        weights,
        dir.join("snapshots")
            .join(&commit)
            .join("model.safetensors")
    );
    assert_eq!(
        fs::read_link(&weights).unwrap().to_str().unwrap(),
        format!("../../blobs/{sha}")
    );
    assert_eq!(
        fs::read_link(&config).unwrap().to_str().unwrap(),
        format!("../../blobs/{git}")
    );
    assert_eq!(fs::read_to_string(dir.join("refs/main")).unwrap(), commit);
    let mut expected = vec![
        ".locks".to_owned(),
        ".locks/models--org--model".to_owned(),
        format!(".locks/models--org--model/{git}.lock"),
        format!(".locks/models--org--model/{sha}.lock"),
        "CACHEDIR.TAG".to_owned(),
        "models--org--model".to_owned(),
        "models--org--model/blobs".to_owned(),
        format!("models--org--model/blobs/{git}"),
        format!("models--org--model/blobs/{sha}"),
        "models--org--model/refs".to_owned(),
        "models--org--model/refs/main".to_owned(),
        "models--org--model/snapshots".to_owned(),
        format!("models--org--model/snapshots/{commit}"),
        format!("models--org--model/snapshots/{commit}/config.json"),
        format!("models--org--model/snapshots/{commit}/model.safetensors"),
    ];
    expected.sort();
    assert_eq!(tree(&fx.cache_root()), expected);
    assert_eq!(
        hub.cache().repo_size(&repo),
        (WEIGHTS_LEN + CONFIG.len()) as u64
    );

    let events = events.borrow();
    assert!(
        matches!(&events[0], Progress::Start { file, total: Some(t), resumed_from: 0 } if file == "model.safetensors" && *t == WEIGHTS_LEN as u64)
    );
    let advanced: u64 = events
        .iter()
        .map(|e| if let Progress::Advance(n) = e { *n } else { 0 })
        .sum();
    assert_eq!(advanced, (WEIGHTS_LEN + CONFIG.len()) as u64);
    assert!(events.contains(&Progress::Done {
        file: "model.safetensors".into()
    }));
}

#[test]
fn second_online_call_is_head_only() {
    let fx = Fixture::new();
    let hub = fx.hub();
    let repo = Repo::model("org/model");
    let first = hub.get(&repo, "model.safetensors", &mut ignore).unwrap();
    fx.server.reset_stats();
    let (events, mut sink) = recorder();
    let second = hub.get(&repo, "model.safetensors", &mut sink).unwrap();
    assert_eq!(first, second);
    assert_eq!(fx.server.requests("HEAD", "/resolve/"), 1);
    assert_eq!(fx.server.requests("GET", ""), 0);
    assert_eq!(
        *events.borrow(),
        vec![Progress::Cached {
            file: "model.safetensors".into()
        }]
    );
}

#[test]
fn blob_present_only_link_and_ref_made() {
    let fx = Fixture::new();
    let hub = fx.hub();
    let repo = Repo::model("org/model");
    let path = hub.get(&repo, "model.safetensors", &mut ignore).unwrap();
    fs::remove_file(&path).unwrap();
    fs::remove_file(fx.cache_root().join("models--org--model/refs/main")).unwrap();
    fx.server.reset_stats();
    assert_eq!(
        hub.get(&repo, "model.safetensors", &mut ignore).unwrap(),
        path
    );
    assert_eq!(fx.server.requests("GET", ""), 0);
    assert!(fs::read_link(&path).is_ok());
    assert_eq!(
        fs::read_to_string(fx.cache_root().join("models--org--model/refs/main")).unwrap(),
        fx.commit("org/model")
    );
}

#[test]
fn offline_makes_no_request() {
    let fx = Fixture::new();
    let repo = Repo::model("org/model");
    let online = fx.hub().get(&repo, "config.json", &mut ignore).unwrap();
    fx.server.reset_stats();
    let hub = fx.offline_hub();
    assert!(hub.is_offline());
    assert_eq!(hub.get(&repo, "config.json", &mut ignore).unwrap(), online);
    assert_eq!(hub.cache().get(&repo, "config.json"), Some(online));
    assert!(fx.server.log().is_empty());
}

#[test]
fn offline_with_empty_cache_names_repo_file_and_variable() {
    let fx = Fixture::new();
    let err = fx
        .offline_hub()
        .get(&Repo::model("org/model"), "model.safetensors", &mut ignore)
        .unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err:?}");
    let message = err.to_string();
    for needle in ["org/model", "model.safetensors", "HF_HUB_OFFLINE"] {
        assert!(message.contains(needle), "{message}");
    }
    assert!(fx.server.log().is_empty());
}

#[test]
fn commit_revision_in_cache_needs_no_request_and_no_ref() {
    let fx = Fixture::new();
    let commit = fx.commit("org/model");
    let repo = Repo::model("org/model").with_revision(&commit);
    let hub = fx.hub();
    let path = hub.get(&repo, "config.json", &mut ignore).unwrap();
    assert!(
        !fx.cache_root()
            .join("models--org--model/refs")
            .join(&commit)
            .exists()
    );
    fx.server.reset_stats();
    assert_eq!(hub.get(&repo, "config.json", &mut ignore).unwrap(), path);
    assert!(fx.server.log().is_empty());
}

#[test]
fn dataset_urls_and_nested_links() {
    let fx = Fixture::new();
    let hub = fx.hub();
    let repo = Repo::dataset("org/ds");
    let tar = hub.get(&repo, "test/0.tar", &mut ignore).unwrap();
    assert_eq!(
        fs::read(&tar).unwrap(),
        fx.served("datasets/org/ds/test/0.tar")
    );
    let sha = fx.sha256("datasets/org/ds", "test/0.tar");
    assert_eq!(
        fs::read_link(&tar).unwrap().to_str().unwrap(),
        format!("../../../blobs/{sha}")
    );
    assert!(tar.starts_with(fx.cache_root().join("datasets--org--ds/snapshots")));
    assert_eq!(
        fx.server
            .requests("HEAD", "/datasets/org/ds/resolve/main/test/0.tar"),
        1
    );
    let readme = hub.get(&repo, "README.md", &mut ignore).unwrap();
    assert_eq!(fs::read(readme).unwrap(), b"# a dataset\n");

    let nested = hub
        .get(&Repo::model("org/model"), "sub/notes.txt", &mut ignore)
        .unwrap();
    let git = fx.git_sha1("org/model", "sub/notes.txt");
    assert_eq!(
        fs::read_link(&nested).unwrap().to_str().unwrap(),
        format!("../../../blobs/{git}")
    );
}

#[test]
fn changed_repo_gets_new_commit_and_snapshot() {
    let fx = Fixture::new();
    let hub = fx.hub();
    let repo = Repo::model("org/model");
    let old = hub.get(&repo, "config.json", &mut ignore).unwrap();
    fs::write(
        fx.dir.path().join("served/models/org/model/config.json"),
        b"{\"embed_dim\": 768}\n",
    )
    .unwrap();
    let new = hub.get(&repo, "config.json", &mut ignore).unwrap();
    assert_ne!(old, new);
    assert_eq!(fs::read(&new).unwrap(), b"{\"embed_dim\": 768}\n");
    assert_eq!(fs::read(&old).unwrap(), CONFIG);
    assert_eq!(hub.cache().get(&repo, "config.json"), Some(new));
}

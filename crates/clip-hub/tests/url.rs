use std::fs;

use clip_hub::{Error, HubConfig, Progress};

use crate::common::{Fixture, WEIGHTS_LEN, ignore, recorder};

#[test]
fn plain_url_downloads_once_then_uses_the_file() {
    let fx = Fixture::new();
    let sha = fx.sha256("org/model", "model.safetensors");
    let url = format!("{}/cdn/{sha}", fx.server.endpoint());
    let dir = fx.dir.path().join("clip");
    let hub = fx.hub();
    fx.server.cut("org/model/model.safetensors", 50_000, 1);
    let path = hub
        .get_url(&url, &sha.to_uppercase(), &dir, &mut ignore)
        .unwrap();
    assert_eq!(path, dir.join(&sha));
    assert_eq!(
        fs::read(&path).unwrap(),
        fx.served("models/org/model/model.safetensors")
    );
    assert_eq!(
        fx.server.bytes_served("org/model/model.safetensors"),
        WEIGHTS_LEN as u64
    );
    fx.server.reset_stats();
    let (events, mut sink) = recorder();
    assert_eq!(hub.get_url(&url, &sha, &dir, &mut sink).unwrap(), path);
    assert!(fx.server.log().is_empty());
    assert_eq!(
        *events.borrow(),
        vec![Progress::Cached { file: url.clone() }]
    );
    let offline = fx.hub_with(HubConfig {
        offline: true,
        ..fx.config()
    });
    assert_eq!(
        offline.get_url(&url, &sha, &dir, &mut ignore).unwrap(),
        path
    );
}

#[test]
fn plain_url_with_wrong_hash_is_refused() {
    let fx = Fixture::new();
    let sha = fx.sha256("org/model", "model.safetensors");
    let url = format!("{}/cdn/{sha}", fx.server.endpoint());
    let dir = fx.dir.path().join("clip");
    let err = fx
        .hub()
        .get_url(&url, &"0".repeat(64), &dir, &mut ignore)
        .unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err:?}");
    assert!(!dir.join(&sha).exists() && !dir.join(format!("{sha}.incomplete")).exists());
    let offline = fx.hub_with(HubConfig {
        offline: true,
        ..fx.config()
    });
    let err = offline.get_url(&url, &sha, &dir, &mut ignore).unwrap_err();
    assert!(
        matches!(err, Error::OfflineUrl { .. }) && err.to_string().contains("HF_HUB_OFFLINE"),
        "{err:?}"
    );
}

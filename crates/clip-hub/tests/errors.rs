use clip_hub::{Error, HubConfig, ProxyConfig, Repo};

use crate::common::{Fixture, ignore};

#[test]
fn missing_repo_says_check_the_name() {
    let fx = Fixture::new();
    let err = fx
        .hub()
        .get(&Repo::model("org/nothere"), "config.json", &mut ignore)
        .unwrap_err();
    assert!(matches!(err, Error::RepoNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("org/nothere")
            && message.contains("check its name")
            && message.contains("HF_TOKEN"),
        "{message}"
    );
}

#[test]
fn missing_file_is_its_own_error_and_is_remembered() {
    let fx = Fixture::new();
    let repo = Repo::model("org/model");
    let hub = fx.hub();
    let err = hub
        .get(&repo, "open_clip_model.safetensors", &mut ignore)
        .unwrap_err();
    assert!(matches!(err, Error::EntryNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("open_clip_model.safetensors")
            && message.contains("org/model")
            && message.contains("check the file name"),
        "{message}"
    );

    let commit = fx.commit("org/model");
    let marker = fx
        .cache_root()
        .join("models--org--model/.no_exist")
        .join(&commit)
        .join("open_clip_model.safetensors");
    assert_eq!(std::fs::metadata(&marker).unwrap().len(), 0);
    assert_eq!(
        std::fs::read_to_string(fx.cache_root().join("models--org--model/refs/main")).unwrap(),
        commit
    );
    assert!(
        hub.cache()
            .is_known_missing(&repo, "open_clip_model.safetensors")
    );
    assert_eq!(
        hub.try_get(&repo, "open_clip_model.safetensors", &mut ignore)
            .unwrap(),
        None
    );

    fx.server.reset_stats();
    let offline = fx.offline_hub();
    assert_eq!(
        offline
            .try_get(&repo, "open_clip_model.safetensors", &mut ignore)
            .unwrap(),
        None
    );
    assert!(matches!(
        offline.get(&repo, "open_clip_model.safetensors", &mut ignore),
        Err(Error::EntryNotFound { .. })
    ));
    assert!(fx.server.log().is_empty());
}

#[test]
fn missing_revision() {
    let fx = Fixture::new();
    let err = fx
        .hub()
        .get(
            &Repo::model("org/model").with_revision("v9"),
            "config.json",
            &mut ignore,
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::RevisionNotFound { revision, .. } if revision == "v9"),
        "{err:?}"
    );
    assert!(err.to_string().contains("v9"));
}

#[test]
fn token_goes_to_the_endpoint_never_to_the_cdn() {
    let fx = Fixture::new();
    fx.server.require_token("org/model", "hf_secret", false);
    let config = HubConfig {
        token: Some("hf_secret".into()),
        ..fx.config()
    };
    fx.hub_with(config)
        .get(&Repo::model("org/model"), "model.safetensors", &mut ignore)
        .unwrap();
    let log = fx.server.log();
    let head = log.iter().find(|r| r.method == "HEAD").unwrap();
    assert!(head.authorization);
    assert_eq!(
        head.host,
        fx.server.endpoint().trim_start_matches("http://")
    );
    let cdn = log.iter().find(|r| r.path.starts_with("/cdn/")).unwrap();
    assert_eq!(cdn.method, "GET");
    assert_eq!(cdn.host, fx.server.cdn_host());
    assert!(!cdn.authorization);
}

#[test]
fn private_gated_and_bad_token_say_set_hf_token() {
    let fx = Fixture::new();
    let repo = Repo::model("org/model");
    fx.server.require_token("org/model", "hf_secret", false);
    let err = fx.hub().get(&repo, "config.json", &mut ignore).unwrap_err();
    assert!(matches!(err, Error::RepoNotFound { .. }), "{err:?}");
    fx.server.require_token("org/model", "hf_secret", true);
    let err = fx.hub().get(&repo, "config.json", &mut ignore).unwrap_err();
    assert!(
        matches!(err, Error::Gated { .. }) && err.to_string().contains("HF_TOKEN"),
        "{err:?}"
    );
    let bad = HubConfig {
        token: Some("hf_wrong".into()),
        ..fx.config()
    };
    let err = fx
        .hub_with(bad)
        .get(&repo, "config.json", &mut ignore)
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 401, .. })
            && err.to_string().contains("HF_TOKEN"),
        "{err:?}"
    );
}

/// A port nothing listens on.
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[test]
fn proxies_are_used_unless_no_proxy_matches() {
    let fx = Fixture::new();
    let repo = Repo::model("org/model");
    let via_dead_proxy = ProxyConfig {
        http: Some(dead_endpoint()),
        https: None,
        no_proxy: vec![],
    };
    let config = HubConfig {
        proxy: via_dead_proxy.clone(),
        retries: 2,
        ..fx.config()
    };
    let err = fx
        .hub_with(config)
        .get(&repo, "model.safetensors", &mut ignore)
        .unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert!(fx.server.log().is_empty());

    let bypass = ProxyConfig {
        no_proxy: vec!["127.0.0.1".into(), ".localhost".into()],
        ..via_dead_proxy
    };
    let config = HubConfig {
        proxy: bypass,
        ..fx.config()
    };
    fx.hub_with(config)
        .get(&repo, "model.safetensors", &mut ignore)
        .unwrap();
}

#[test]
fn network_down_falls_back_to_the_cache() {
    let fx = Fixture::new();
    let repo = Repo::model("org/model");
    let cached = fx.hub().get(&repo, "config.json", &mut ignore).unwrap();
    let down = HubConfig {
        endpoint: dead_endpoint(),
        ..fx.config()
    };
    assert_eq!(
        fx.hub_with(down.clone())
            .get(&repo, "config.json", &mut ignore)
            .unwrap(),
        cached
    );
    let err = fx
        .hub_with(down)
        .get(&repo, "model.safetensors", &mut ignore)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Network { attempts: 5, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("HF_HUB_OFFLINE"));
}

#[test]
fn invalid_file_names_are_refused_before_any_request() {
    let fx = Fixture::new();
    let err = fx
        .hub()
        .get(&Repo::model("org/model"), "../../etc/passwd", &mut ignore)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
    assert!(fx.server.log().is_empty());
}

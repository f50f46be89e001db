use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use clip_hub::{Cache, HubConfig, Repo, env};

use crate::common::{Fixture, ignore};

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn env_cache_root_precedence_and_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hf");
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join("token"), "hf_from_file\n").unwrap();
    let hf_home = home.to_str().unwrap();
    let e = lookup(&[
        ("HF_HOME", hf_home),
        ("HF_ENDPOINT", "http://mirror.local/"),
        ("HF_HUB_OFFLINE", "yes"),
    ]);
    let config = HubConfig::from_lookup(&e);
    assert_eq!(config.token.as_deref(), Some("hf_from_file"));
    assert_eq!(config.endpoint, "http://mirror.local");
    assert!(config.offline);
    assert!(config.retries >= 3);
    assert_eq!(env::cache_root(&e), home.join("hub"));
    let e = lookup(&[
        ("HF_HOME", hf_home),
        ("HF_TOKEN", "hf_env"),
        ("HF_HUB_CACHE", "/new"),
    ]);
    let config = HubConfig::from_lookup(&e);
    assert_eq!(config.token.as_deref(), Some("hf_env"));
    assert!(!config.offline);
    assert_eq!(env::cache_root(&e), PathBuf::from("/new"));
    assert!(HubConfig::from_lookup(&lookup(&[("TRANSFORMERS_OFFLINE", "1")])).offline);
}

/// The layout huggingface_hub 2.4.0 wrote when it fetched `config.json`, `model.safetensors` and a
/// missing file from this test hub (observed with the .venv's Python; see `python_oracle_*` below for
/// the live check), rebuilt by hand so the test runs without Python.
#[test]
fn hand_built_python_layout_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let commit = "3a43903edf43a870df326b6b70148ed743cabade";
    let git = "cb5b2f69babc53f9145b45ad20b9a075d48717ef";
    let sha = "03e70f3c9e8ce96716f5ddecd135041880ce27e66fdbfc172813db6e29f35dc8";
    let repo_dir = root.join("models--org--model");
    fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    fs::create_dir_all(repo_dir.join("refs")).unwrap();
    fs::create_dir_all(repo_dir.join("snapshots").join(commit).join("sub")).unwrap();
    fs::create_dir_all(repo_dir.join(".no_exist").join(commit)).unwrap();
    fs::create_dir_all(root.join(".locks/models--org--model")).unwrap();
    fs::write(repo_dir.join("blobs").join(git), b"{\"a\": 1}\n").unwrap();
    fs::write(repo_dir.join("blobs").join(sha), b"weights").unwrap();
    fs::write(repo_dir.join("refs/main"), commit).unwrap();
    symlink(
        format!("../../blobs/{git}"),
        repo_dir.join("snapshots").join(commit).join("config.json"),
    )
    .unwrap();
    symlink(
        format!("../../../blobs/{sha}"),
        repo_dir
            .join("snapshots")
            .join(commit)
            .join("sub/model.safetensors"),
    )
    .unwrap();
    fs::write(
        repo_dir.join(".no_exist").join(commit).join("missing.txt"),
        b"",
    )
    .unwrap();

    let cache = Cache::new(root.to_owned());
    let repo = Repo::model("org/model");
    let config = cache.get(&repo, "config.json").unwrap();
    assert_eq!(fs::read(&config).unwrap(), b"{\"a\": 1}\n");
    assert_eq!(
        fs::read(cache.get(&repo, "sub/model.safetensors").unwrap()).unwrap(),
        b"weights"
    );
    assert_eq!(
        cache.get(&repo.clone().with_revision(commit), "config.json"),
        Some(config)
    );
    assert!(cache.is_known_missing(&repo, "missing.txt"));
    assert!(cache.get(&repo, "missing.txt").is_none());
    assert!(
        cache
            .get(&repo.clone().with_revision("v2"), "config.json")
            .is_none()
    );
    assert!(
        cache
            .get(&Repo::dataset("org/model"), "config.json")
            .is_none()
    );
    assert_eq!(cache.repo_size(&repo), 16);
}

/// The .venv's Python with huggingface_hub, when this checkout has one (`cargo xtask setup --oracles`),
/// or `CLIP_HUB_PYTHON`.
fn oracle_python() -> Option<PathBuf> {
    let python = std::env::var_os("CLIP_HUB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import huggingface_hub"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

/// Runs a Python snippet against the test hub; returns its stdout lines.
fn python(python: &Path, fx: &Fixture, offline: bool, script: &str) -> Vec<String> {
    let out = Command::new(python)
        .env_clear()
        .env("HOME", fx.dir.path())
        .env("HF_ENDPOINT", fx.server.endpoint())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_OFFLINE", if offline { "1" } else { "0" })
        .env("CACHE", fx.cache_root())
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

const FILES: [(&str, &str, &str); 4] = [
    ("org/model", "model", "config.json"),
    ("org/model", "model", "model.safetensors"),
    ("org/ds", "dataset", "test/0.tar"),
    ("org/ds", "dataset", "README.md"),
];

fn repo_of(id: &str, kind: &str) -> Repo {
    if kind == "dataset" {
        Repo::dataset(id)
    } else {
        Repo::model(id)
    }
}

#[test]
fn python_oracle_cache_resolves_in_ours() {
    let Some(py) = oracle_python() else { return };
    let fx = Fixture::new();
    let script = "import os\nfrom huggingface_hub import hf_hub_download\n\
for r, t, f in [('org/model','model','config.json'),('org/model','model','model.safetensors'),('org/ds','dataset','test/0.tar'),('org/ds','dataset','README.md')]:\n    print(hf_hub_download(r, f, repo_type=t, cache_dir=os.environ['CACHE']))\n\
try:\n    hf_hub_download('org/model', 'missing.bin', cache_dir=os.environ['CACHE'])\nexcept Exception as e:\n    print(type(e).__name__)\n";
    let lines = python(&py, &fx, false, script);
    assert_eq!(lines.last().unwrap(), "RemoteEntryNotFoundError");
    let cache = Cache::new(fx.cache_root());
    for ((id, kind, file), line) in FILES.iter().zip(&lines) {
        assert_eq!(
            cache.get(&repo_of(id, kind), file),
            Some(PathBuf::from(line)),
            "{file}"
        );
    }
    assert!(cache.is_known_missing(&Repo::model("org/model"), "missing.bin"));
    fx.server.reset_stats();
    let offline = fx.offline_hub();
    for (id, kind, file) in FILES {
        offline.get(&repo_of(id, kind), file, &mut ignore).unwrap();
    }
    assert_eq!(
        offline
            .try_get(&Repo::model("org/model"), "missing.bin", &mut ignore)
            .unwrap(),
        None
    );
    // Online, ours finds every file complete: HEADs only.
    let online = fx.hub();
    for (id, kind, file) in FILES {
        online.get(&repo_of(id, kind), file, &mut ignore).unwrap();
    }
    assert_eq!(fx.server.requests("GET", ""), 0);
}

#[test]
fn python_oracle_finds_our_cache_offline() {
    let Some(py) = oracle_python() else { return };
    let fx = Fixture::new();
    let hub = fx.hub();
    let ours: Vec<PathBuf> = FILES
        .iter()
        .map(|(id, kind, file)| hub.get(&repo_of(id, kind), file, &mut ignore).unwrap())
        .collect();
    assert_eq!(
        hub.try_get(&Repo::model("org/model"), "missing.bin", &mut ignore)
            .unwrap(),
        None
    );
    fx.server.reset_stats();
    let script = "import os\nfrom huggingface_hub import hf_hub_download, try_to_load_from_cache\nfrom huggingface_hub.file_download import _CACHED_NO_EXIST\n\
for r, t, f in [('org/model','model','config.json'),('org/model','model','model.safetensors'),('org/ds','dataset','test/0.tar'),('org/ds','dataset','README.md')]:\n    print(hf_hub_download(r, f, repo_type=t, cache_dir=os.environ['CACHE']))\n\
print(try_to_load_from_cache('org/model', 'missing.bin', cache_dir=os.environ['CACHE']) is _CACHED_NO_EXIST)\n";
    let lines = python(&py, &fx, true, script);
    let theirs: Vec<PathBuf> = lines[..4].iter().map(PathBuf::from).collect();
    assert_eq!(theirs, ours);
    assert_eq!(lines[4], "True");
    assert!(fx.server.log().is_empty());
}

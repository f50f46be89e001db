use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clip_hub::{Cache, Hub, HubConfig, Progress, Repo};
use clip_testhub::TestHub;

/// Deterministic bytes (an LCG), so blobs differ between files.
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

pub(crate) const CONFIG: &[u8] = b"{\"embed_dim\": 512}\n";
pub(crate) const WEIGHTS_LEN: usize = 200_000;

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) server: TestHub,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("served");
        let write = |rel: &str, data: &[u8]| {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, data).unwrap();
        };
        write("models/org/model/config.json", CONFIG);
        write("models/org/model/model.safetensors", &bytes(1, WEIGHTS_LEN));
        write("models/org/model/sub/notes.txt", b"nested\n");
        write("datasets/org/ds/README.md", b"# a dataset\n");
        write("datasets/org/ds/test/0.tar", &bytes(2, 30_000));
        let server = TestHub::start(&root);
        Fixture { dir, server }
    }

    pub(crate) fn served(&self, rel: &str) -> Vec<u8> {
        fs::read(self.dir.path().join("served").join(rel)).unwrap()
    }

    pub(crate) fn cache_root(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub(crate) fn config(&self) -> HubConfig {
        HubConfig {
            retry_base_delay: Duration::from_millis(10),
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(2),
            lock_stall_timeout: Duration::from_secs(10),
            ..HubConfig::new(self.server.endpoint())
        }
    }

    pub(crate) fn hub(&self) -> Hub {
        self.hub_with(self.config())
    }

    pub(crate) fn hub_with(&self, config: HubConfig) -> Hub {
        Hub::new(Cache::new(self.cache_root()), config)
    }

    pub(crate) fn offline_hub(&self) -> Hub {
        self.hub_with(HubConfig {
            offline: true,
            ..self.config()
        })
    }

    pub(crate) fn commit(&self, repo_key: &str) -> String {
        self.server.repo(repo_key).unwrap().commit
    }

    fn file(&self, repo_key: &str, path: &str) -> clip_testhub::FileInfo {
        let repo = self.server.repo(repo_key).unwrap();
        repo.files.into_iter().find(|f| f.path == path).unwrap()
    }

    pub(crate) fn sha256(&self, repo_key: &str, path: &str) -> String {
        self.file(repo_key, path).sha256
    }

    pub(crate) fn git_sha1(&self, repo_key: &str, path: &str) -> String {
        self.file(repo_key, path).git_sha1
    }

    /// Fetches the model's weights online and checks their bytes.
    pub(crate) fn fetch_weights(&self) -> PathBuf {
        let path = self
            .hub()
            .get(&Repo::model("org/model"), "model.safetensors", &mut ignore)
            .unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            self.served("models/org/model/model.safetensors")
        );
        path
    }

    /// Leaves the first `len` bytes of the weights as a killed process would: `blobs/{sha}.incomplete`.
    pub(crate) fn leave_partial_weights(&self, len: usize) -> PathBuf {
        let sha = self.sha256("org/model", "model.safetensors");
        let blobs = self.cache_root().join("models--org--model/blobs");
        fs::create_dir_all(&blobs).unwrap();
        let partial = blobs.join(format!("{sha}.incomplete"));
        fs::write(
            &partial,
            &self.served("models/org/model/model.safetensors")[..len],
        )
        .unwrap();
        partial
    }
}

/// A progress callback that records events.
pub(crate) fn recorder() -> (
    std::rc::Rc<std::cell::RefCell<Vec<Progress>>>,
    impl FnMut(Progress),
) {
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = events.clone();
    (events, move |p| sink.borrow_mut().push(p))
}

pub(crate) fn ignore(_: Progress) {}

/// Every path under `dir`, relative, sorted.
pub(crate) fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if p.is_dir() && !p.is_symlink() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

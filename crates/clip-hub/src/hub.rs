//! [`Hub`]: the cache filled from the network. The order of steps follows huggingface_hub's
//! `_hf_hub_download_to_cache_dir`: offline means the cache alone; a commit-hash revision already in the
//! cache needs no request; otherwise one `HEAD` gives commit and etag, a snapshot link already there
//! ends it, a blob already there only needs its link, and only a missing blob is downloaded, under the
//! blob's lock. When the `HEAD` fails for a reason other than "no such file or revision" (network down,
//! hub error, private repo without a token), a copy in the cache is used, as in Python.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::{Cache, make_parent};
use crate::config::HubConfig;
use crate::download::{Job, download, incomplete_path};
use crate::error::{Error, Result};
use crate::http::Http;
use crate::lock;
use crate::metadata::{self, Head};
use crate::progress::Progress;
use crate::repo::{Repo, is_commit_hash, validate_file};
use crate::verify::{Expected, verify};

/// A hub client over a cache.
pub struct Hub {
    cache: Cache,
    config: HubConfig,
    http: Http,
}

impl Hub {
    /// A client with these settings over this cache.
    pub fn new(cache: Cache, config: HubConfig) -> Self {
        let http = Http::new(&config);
        Hub {
            cache,
            config,
            http,
        }
    }

    /// Cache and settings from the process environment.
    pub fn from_env() -> Self {
        Hub::new(Cache::from_env(), HubConfig::from_env())
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The settings.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Whether no request will be made.
    pub fn is_offline(&self) -> bool {
        self.config.offline
    }

    /// The file's path under `snapshots/`, fetching it if needed. Offline: the cache only.
    pub fn get(
        &self,
        repo: &Repo,
        file: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PathBuf> {
        self.try_get(repo, file, progress)?
            .ok_or_else(|| Error::EntryNotFound {
                repo: repo.clone(),
                file: file.to_owned(),
            })
    }

    /// Like [`Hub::get`], but `Ok(None)` when the hub says the file does not exist (the `.no_exist`
    /// marker is then written), for "try safetensors, then .bin" lookups. Offline: `Ok(None)` when
    /// `.no_exist` says so, else [`Error::Offline`] if the file is not cached.
    pub fn try_get(
        &self,
        repo: &Repo,
        file: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Option<PathBuf>> {
        validate_file(file)?;
        let cached = self.cache.get(repo, file);
        if self.config.offline || (is_commit_hash(&repo.revision) && cached.is_some()) {
            if let Some(path) = cached {
                progress(Progress::Cached {
                    file: file.to_owned(),
                });
                return Ok(Some(path));
            }
            if self.cache.is_known_missing(repo, file) {
                return Ok(None);
            }
            return Err(Error::Offline {
                repo: repo.clone(),
                file: file.to_owned(),
            });
        }
        // With a copy at hand, one quick try is enough before falling back to it.
        let attempts = if cached.is_some() {
            1
        } else {
            self.config.retries
        };
        let meta = match metadata::head(&self.http, &self.config, repo, file, attempts, progress) {
            Ok(Head::Found(meta)) => meta,
            Ok(Head::Missing { commit }) => {
                if let Some(commit) = commit {
                    // Best effort, as in Python: a read-only cache still answers.
                    let _ = self.cache.mark_missing(repo, &commit, file);
                    let _ = self.cache.write_ref(repo, &commit);
                }
                return Ok(None);
            }
            Err(e) if falls_back(&e) && cached.is_some() => {
                progress(Progress::Cached {
                    file: file.to_owned(),
                });
                return Ok(cached);
            }
            Err(e) => return Err(e),
        };
        let pointer = self.cache.snapshot_path(repo, &meta.commit, file);
        if pointer.is_file() {
            let _ = self.cache.write_ref(repo, &meta.commit);
            progress(Progress::Cached {
                file: file.to_owned(),
            });
            return Ok(Some(pointer));
        }
        self.cache.tag();
        let blob = self.cache.blob_path(repo, &meta.etag);
        make_parent(&blob)?;
        let lock_path = self.cache.lock_path(repo, &meta.etag);
        let blobs = blob.parent().unwrap_or(Path::new(".")).to_owned();
        let watched = |etag: &str| partial_bytes(&blobs, etag);
        let _lock = lock::acquire(
            &lock_path,
            self.config.lock_stall_timeout,
            &|| watched(&meta.etag),
            &mut || {
                progress(Progress::Waiting {
                    file: file.to_owned(),
                })
            },
        )?;
        let fresh = !blob.is_file();
        if fresh {
            let expected = Expected::from_etag(&meta.etag);
            let job = Job {
                url: &meta.location,
                dest: &blob,
                size: meta.size,
                expected: &expected,
                label: file,
            };
            download(&self.http, &self.config, &job, progress)?;
        }
        let pointer = self
            .cache
            .link_snapshot(repo, &meta.commit, file, &meta.etag)?;
        self.cache.write_ref(repo, &meta.commit)?;
        progress(if fresh {
            Progress::Done {
                file: file.to_owned(),
            }
        } else {
            Progress::Cached {
                file: file.to_owned(),
            }
        });
        Ok(Some(pointer))
    }

    /// A plain URL with a known SHA-256 (OpenAI's direct `.pt` URLs), cached at `dir/{basename}` as
    /// open_clip does (`~/.cache/clip`): a file there with the right hash is used without a request;
    /// otherwise it is downloaded to `.incomplete` with the same resume, verify, lock and rename rules
    /// (the lock at `dir/.locks/{basename}.lock`).
    pub fn get_url(
        &self,
        url: &str,
        sha256: &str,
        dir: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PathBuf> {
        let name = url
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("");
        validate_file(name)?;
        let dest = dir.join(name);
        let expected = Expected::Sha256(sha256.to_ascii_lowercase());
        let good = |path: &Path| path.is_file() && verify(path, &expected, url).is_ok();
        if good(&dest) {
            progress(Progress::Cached {
                file: url.to_owned(),
            });
            return Ok(dest);
        }
        if self.config.offline {
            return Err(Error::OfflineUrl {
                url: url.to_owned(),
                path: dest,
            });
        }
        let lock_path = dir.join(".locks").join(format!("{name}.lock"));
        let partial = incomplete_path(&dest);
        let _lock = lock::acquire(
            &lock_path,
            self.config.lock_stall_timeout,
            &|| fs::metadata(&partial).map_or(0, |m| m.len()),
            &mut || {
                progress(Progress::Waiting {
                    file: url.to_owned(),
                })
            },
        )?;
        if good(&dest) {
            progress(Progress::Cached {
                file: url.to_owned(),
            });
            return Ok(dest);
        }
        let job = Job {
            url,
            dest: &dest,
            size: None,
            expected: &expected,
            label: url,
        };
        download(&self.http, &self.config, &job, progress)?;
        progress(Progress::Done {
            file: url.to_owned(),
        });
        Ok(dest)
    }
}

/// Whether a failed `HEAD` may be answered from the cache: not when the hub said the file or revision
/// does not exist.
fn falls_back(error: &Error) -> bool {
    !matches!(
        error,
        Error::EntryNotFound { .. } | Error::RevisionNotFound { .. } | Error::InvalidFile { .. }
    )
}

/// Bytes in `blobs/` under names starting with `etag` (ours `{etag}.incomplete`, Python's
/// `{etag}.{uuid}.incomplete`, the blob itself): grows while another process downloads it.
fn partial_bytes(blobs: &Path, etag: &str) -> u64 {
    let Ok(entries) = fs::read_dir(blobs) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(etag))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len() + 1)
        .sum()
}

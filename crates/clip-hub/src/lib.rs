//! Files from the Hugging Face hub, kept in the very cache huggingface_hub uses, so that a model fetched
//! by Python is found here offline and the other way round.
//!
//! Two halves, kept apart: [`Cache`] is the folder (`blobs/`, `snapshots/`, `refs/`, `.no_exist/`, locks)
//! and never touches the network, so offline resolution is a pure function of the folder; [`Hub`] adds
//! the hub's file protocol (a `HEAD` for commit and etag, the body from the CDN) and fills the cache.
//! Settings come from the same variables as in Python ([`env`](mod@env), [`HubConfig::from_env`]); progress goes
//! to a callback ([`Progress`]); nothing is printed.
//!
//! Beyond huggingface_hub 2.4.0: a cut download resumes with `Range` (in the same call and across
//! processes), and every body is verified, against the SHA-256 for LFS files and against the git blob
//! id for the others, before it enters the cache.
//!
//! Why not the `hf-hub` crate: its synchronous ureq API (0.4/0.5) reads only `HF_HOME` (not
//! `HF_HUB_CACHE`), has no offline mode, writes no `.no_exist` markers, sends the token to the CDN as
//! well as to the hub, hashes nothing, takes no `flock` compatible with Python's, does not read
//! `NO_PROXY` beyond what ureq 2 does, and draws its own progress bar; 1.0 is an async rewrite on
//! reqwest and tokio (a large build for one file fetch) whose main branch has since dropped reading
//! the environment. What is needed here is a few hundred lines on a small, well-kept HTTP client
//! (`ureq` 3 with rustls and `ring`: no OpenSSL, no cmake), so we wrote those.
//!
//! # Example
//! ```
//! use clip_hub::{Cache, Repo};
//!
//! // The cache alone never touches the network: an empty folder holds nothing.
//! let cache = Cache::new(std::env::temp_dir().join("clip-hub-doc-empty-cache"));
//! let repo = Repo::model("timm/vit_base_patch32_clip_224.openai");
//! assert_eq!(repo.folder_name(), "models--timm--vit_base_patch32_clip_224.openai");
//! assert!(cache.get(&repo, "open_clip_model.safetensors").is_none());
//! ```

mod cache;
mod config;
mod download;
pub mod env;
mod error;
mod http;
mod hub;
mod lock;
mod metadata;
mod progress;
mod repo;
mod verify;

pub use cache::Cache;
pub use config::HubConfig;
pub use env::ProxyConfig;
pub use error::{Error, Result};
pub use hub::Hub;
pub use progress::Progress;
pub use repo::{Repo, RepoType, is_commit_hash};

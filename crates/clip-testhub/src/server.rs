//! Routing and fault injection.
//!
//! - `HEAD|GET /{id}/resolve/{rev}/{path}` and `/datasets/{id}/resolve/{rev}/{path}`: git files answer
//!   200 with `ETag: "{git blob id}"`; LFS files answer 302 to `http://localhost:{port}/cdn/{sha256}`
//!   (another host name for this server, as a CDN is another host) with `X-Linked-Etag`,
//!   `X-Linked-Size`. Both carry `X-Repo-Commit`. Errors: unknown repo 401 `RepoNotFound`; revision
//!   other than `main` or the commit 404 `RevisionNotFound`; unknown file 404 `EntryNotFound`.
//! - `HEAD|GET /cdn/{sha256}`: the bytes, with `Range: bytes=N-` (206 + `Content-Range`).
//! - `GET /_stats`: the counters as JSON.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::repos::{self, FileInfo, RepoInfo};
use crate::stats::{LoggedRequest, Stats};
use crate::wire::{Request, Response, decode, read_request};

/// Who may read a repo.
#[derive(Clone, Debug)]
pub(crate) struct Access {
    pub(crate) token: String,
    pub(crate) gated: bool,
}

/// Faults to inject, keyed by file key (`org/name/path`, `datasets/org/name/path`).
#[derive(Default)]
pub(crate) struct Faults {
    /// Cut after N body bytes, for the next K body GETs.
    pub(crate) cuts: HashMap<String, (u64, u32)>,
    /// Serve altered bytes (same length) under the true etag.
    pub(crate) corrupt: HashSet<String>,
    /// Accept, then send nothing for a while, for the next K requests of any kind.
    pub(crate) stalls: HashMap<String, u32>,
    /// Wait this long before each body.
    pub(crate) delays: HashMap<String, Duration>,
    /// Answer 200 with the whole body even when asked for a range.
    pub(crate) ignore_range: HashSet<String>,
    /// Repos that need a token (repo key -> access).
    pub(crate) access: HashMap<String, Access>,
}

/// The server's shared state.
pub(crate) struct State {
    pub(crate) root: PathBuf,
    pub(crate) port: u16,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) stall_for: Duration,
}

/// A file located by a request.
struct Located {
    key: String,
    info: FileInfo,
}

impl State {
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves one connection.
    pub(crate) fn handle(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Ok(request) = read_request(&mut stream) else {
            return;
        };
        let mut stats = self.stats();
        *stats
            .requests
            .entry((request.method.clone(), request.path.clone()))
            .or_default() += 1;
        stats.log.push(LoggedRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            host: request.header("host").unwrap_or("").to_owned(),
            authorization: request.header("authorization").is_some(),
            range: request.header("range").map(str::to_owned),
        });
        drop(stats);
        let _ = self.route(&request, &mut stream);
    }

    fn route(&self, request: &Request, stream: &mut TcpStream) -> std::io::Result<()> {
        let with_body = request.method != "HEAD";
        if request.method != "HEAD" && request.method != "GET" {
            return Response::new(405).send(stream, b"", with_body);
        }
        let segments: Vec<String> = request
            .path
            .trim_start_matches('/')
            .split('/')
            .map(decode)
            .collect();
        if request.path == "/_stats" {
            let json = self.stats().to_json();
            return Response::new(200)
                .header("Content-Type", "application/json")
                .send(stream, json.as_bytes(), with_body);
        }
        if segments.len() == 2 && segments[0] == "cdn" {
            return match self.find_by_sha(&segments[1]) {
                Some(found) => {
                    self.body(request, stream, &found, &found.info.sha256, with_body, None)
                }
                None => Response::new(404).send(stream, b"no such blob", with_body),
            };
        }
        self.resolve(request, stream, &segments, with_body)
    }

    fn resolve(
        &self,
        request: &Request,
        stream: &mut TcpStream,
        segments: &[String],
        with_body: bool,
    ) -> std::io::Result<()> {
        let Some(at) = segments
            .iter()
            .position(|s| s == "resolve")
            .filter(|&i| i > 0 && segments.len() > i + 2)
        else {
            return Response::new(404).send(stream, b"not a resolve URL", with_body);
        };
        let repo_key = segments[..at].join("/");
        let revision = &segments[at + 1];
        let path = segments[at + 2..].join("/");
        let Some(repo) = repos::scan(&repos::repo_dir(&self.root, &repo_key)) else {
            return repo_not_found(stream, with_body);
        };
        let access = self.faults().access.get(&repo_key).cloned();
        if let Some(access) = access {
            let sent = request
                .header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "));
            match sent {
                None if access.gated => {
                    return error(
                        stream,
                        401,
                        "GatedRepo",
                        "Access to this model is restricted",
                        None,
                        with_body,
                    );
                }
                None => return repo_not_found(stream, with_body),
                Some(t) if t != access.token => {
                    return error(
                        stream,
                        401,
                        "",
                        "Invalid credentials in Authorization header",
                        None,
                        with_body,
                    );
                }
                Some(_) => {}
            }
        }
        if revision != "main" && *revision != repo.commit {
            return error(
                stream,
                404,
                "RevisionNotFound",
                "Invalid rev id",
                None,
                with_body,
            );
        }
        let Some(info) = repo.files.iter().find(|f| f.path == path).cloned() else {
            return error(
                stream,
                404,
                "EntryNotFound",
                "Entry not found",
                Some(&repo),
                with_body,
            );
        };
        let found = Located {
            key: format!("{repo_key}/{path}"),
            info,
        };
        if found.info.lfs {
            if self.stall(&found.key, stream) {
                return Ok(());
            }
            let pointer = format!(
                "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
                found.info.sha256, found.info.size
            );
            return Response::new(302)
                .header(
                    "Location",
                    format!("http://localhost:{}/cdn/{}", self.port, found.info.sha256),
                )
                .header("X-Repo-Commit", &repo.commit)
                .header("X-Linked-Etag", format!("\"{}\"", found.info.sha256))
                .header("X-Linked-Size", found.info.size.to_string())
                .header(
                    "ETag",
                    format!("\"{}\"", repos::git_blob_id(pointer.as_bytes())),
                )
                .send(stream, b"", with_body);
        }
        let etag = found.info.git_sha1.clone();
        self.body(
            request,
            stream,
            &found,
            &etag,
            with_body,
            Some(&repo.commit),
        )
    }

    fn find_by_sha(&self, sha: &str) -> Option<Located> {
        repos::all_repo_dirs(&self.root)
            .into_iter()
            .find_map(|(key, dir)| {
                let repo = repos::scan(&dir)?;
                let info = repo.files.into_iter().find(|f| f.sha256 == sha)?;
                Some(Located {
                    key: format!("{key}/{}", info.path),
                    info,
                })
            })
    }

    /// Holds the connection silent when a stall is due; true when it did.
    fn stall(&self, key: &str, stream: &mut TcpStream) -> bool {
        let due = {
            let mut faults = self.faults();
            match faults.stalls.get_mut(key) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        if due {
            std::thread::sleep(self.stall_for);
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        due
    }

    fn body(
        &self,
        request: &Request,
        stream: &mut TcpStream,
        found: &Located,
        etag: &str,
        with_body: bool,
        commit: Option<&str>,
    ) -> std::io::Result<()> {
        if self.stall(&found.key, stream) {
            return Ok(());
        }
        let dir = self.find_file_path(found);
        let mut bytes = std::fs::read(dir)?;
        let (corrupt, delay, ignore_range, cut) = {
            let mut faults = self.faults();
            let cut = if with_body {
                match faults.cuts.get_mut(&found.key) {
                    Some((after, times)) if *times > 0 => {
                        *times -= 1;
                        Some(*after)
                    }
                    _ => None,
                }
            } else {
                None
            };
            (
                faults.corrupt.contains(&found.key),
                faults.delays.get(&found.key).copied(),
                faults.ignore_range.contains(&found.key),
                cut,
            )
        };
        if corrupt && !bytes.is_empty() {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x55;
        }
        let total = bytes.len() as u64;
        let start = request
            .header("range")
            .filter(|_| !ignore_range)
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split('-').next())
            .and_then(|s| s.trim().parse::<u64>().ok());
        let mut response = match start {
            Some(s) if s >= total && total > 0 => {
                return Response::new(416)
                    .header("Content-Range", format!("bytes */{total}"))
                    .send(stream, b"", with_body);
            }
            Some(s) => Response::new(206).header(
                "Content-Range",
                format!("bytes {s}-{}/{total}", total.saturating_sub(1)),
            ),
            None => Response::new(200),
        };
        let start = start.unwrap_or(0);
        let slice = &bytes[start as usize..];
        response = response
            .header("ETag", format!("\"{etag}\""))
            .header("Accept-Ranges", "bytes")
            .header("Content-Length", slice.len().to_string());
        if let Some(commit) = commit {
            response = response.header("X-Repo-Commit", commit);
        }
        response.write_head(stream)?;
        if !with_body {
            return stream.flush();
        }
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
        let limit = cut.map_or(slice.len(), |c| (c as usize).min(slice.len()));
        let mut sent = 0;
        for chunk in slice[..limit].chunks(16 * 1024) {
            if stream.write_all(chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        *self.stats().bytes.entry(found.key.clone()).or_default() += sent as u64;
        let _ = stream.flush();
        if cut.is_some() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Ok(())
    }

    fn find_file_path(&self, found: &Located) -> PathBuf {
        let repo_key = &found.key[..found.key.len() - found.info.path.len() - 1];
        repos::repo_dir(&self.root, repo_key).join(&found.info.path)
    }
}

/// What the hub answers for a repo that does not exist, or that is private and no token was sent.
fn repo_not_found(stream: &mut TcpStream, with_body: bool) -> std::io::Result<()> {
    error(
        stream,
        401,
        "RepoNotFound",
        "Repository not found",
        None,
        with_body,
    )
}

/// An error answer with the hub's headers.
fn error(
    stream: &mut TcpStream,
    status: u16,
    code: &str,
    message: &str,
    repo: Option<&RepoInfo>,
    with_body: bool,
) -> std::io::Result<()> {
    let mut response = Response::new(status).header("X-Error-Message", message);
    if !code.is_empty() {
        response = response.header("X-Error-Code", code);
    }
    if let Some(repo) = repo {
        response = response.header("X-Repo-Commit", &repo.commit);
    }
    response.send(stream, message.as_bytes(), with_body)
}

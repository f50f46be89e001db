//! A file's metadata from the hub: the `HEAD` of its `resolve` URL, as huggingface_hub's
//! `get_hf_file_metadata`. Redirects within the same origin are followed (relative ones always are);
//! a redirect to another origin is the CDN location of an LFS file and is not followed: the metadata is
//! on the redirect itself (`X-Linked-Etag`, `X-Linked-Size`) and the body is later fetched from the
//! `Location` without the token.

use crate::config::HubConfig;
use crate::error::{Error, Result};
use crate::http::{Http, Method, Origin, Response, backoff, is_transient, join};
use crate::progress::Progress;
use crate::repo::Repo;

/// What the hub says about a file.
#[derive(Clone, Debug)]
pub(crate) struct FileMeta {
    /// The commit the revision resolved to (`X-Repo-Commit`).
    pub(crate) commit: String,
    /// `X-Linked-Etag`, else `ETag`, without `W/` and quotes.
    pub(crate) etag: String,
    /// `X-Linked-Size`, else `Content-Length` of a non-redirect answer.
    pub(crate) size: Option<u64>,
    /// Where the body is: the CDN location, or the (redirected) resolve URL.
    pub(crate) location: String,
}

/// The answer to a metadata request.
pub(crate) enum Head {
    /// The file exists.
    Found(FileMeta),
    /// The hub says 404 for the file; `commit` is the revision's commit when the hub gave it.
    Missing { commit: Option<String> },
}

/// Most redirects followed within the hub (renamed repos redirect once).
const MAX_REDIRECTS: usize = 10;

/// Asks the hub about `file`, making up to `attempts` tries of each request on transport failures and
/// transient statuses.
pub(crate) fn head(
    http: &Http,
    config: &HubConfig,
    repo: &Repo,
    file: &str,
    attempts: u32,
    progress: &mut dyn FnMut(Progress),
) -> Result<Head> {
    let mut url = repo.url(&config.endpoint, file);
    for _ in 0..MAX_REDIRECTS {
        let response = send_with_retries(http, config, Method::Head, &url, attempts, progress)?;
        let status = response.status;
        if (300..400).contains(&status) {
            let Some(location) = response.header("location") else {
                return Err(bad(&url, &format!("a {status} redirect without Location")));
            };
            let target = join(&url, location);
            if Origin::parse(&target) == Origin::parse(&url) {
                url = target;
                continue;
            }
            return parse(&response, target, true);
        }
        if (200..300).contains(&status) {
            return parse(&response, url, false);
        }
        return status_error(&response, repo, file, &url, &config.endpoint);
    }
    Err(bad(&url, "too many redirects"))
}

/// Sends a request, retrying transport errors and transient statuses with backoff. The last transient
/// status is returned as a response after the final attempt; transport errors become [`Error::Network`].
pub(crate) fn send_with_retries(
    http: &Http,
    config: &HubConfig,
    method: Method,
    url: &str,
    attempts: u32,
    progress: &mut dyn FnMut(Progress),
) -> Result<Response> {
    let attempts = attempts.max(1);
    let mut attempt = 1;
    loop {
        let error = match http.send(method, url, None) {
            Ok(response) if !is_transient(response.status) || attempt >= attempts => {
                return Ok(response);
            }
            Ok(response) => format!("HTTP {}", response.status),
            Err(message) if attempt >= attempts => {
                return Err(Error::Network {
                    url: url.to_owned(),
                    attempts: attempt,
                    message,
                });
            }
            Err(message) => message,
        };
        progress(Progress::Retry { attempt, error });
        std::thread::sleep(backoff(config, attempt));
        attempt += 1;
    }
}

fn bad(url: &str, message: &str) -> Error {
    Error::BadResponse {
        url: url.to_owned(),
        message: message.to_owned(),
    }
}

/// huggingface_hub's `_normalize_etag`.
fn normalize_etag(etag: &str) -> String {
    etag.trim_start_matches(['W', '/'])
        .trim_matches('"')
        .to_owned()
}

fn parse(response: &Response, location: String, redirected: bool) -> Result<Head> {
    let commit = response
        .header("x-repo-commit")
        .ok_or_else(|| bad(&location, "no X-Repo-Commit header"))?
        .to_owned();
    let etag = response
        .header("x-linked-etag")
        .or_else(|| response.header("etag"))
        .map(normalize_etag)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| bad(&location, "no ETag header"))?;
    let size = match response.header("x-linked-size") {
        Some(size) => size.trim().parse().ok(),
        None if redirected => None,
        None => response
            .header("content-length")
            .and_then(|s| s.trim().parse().ok()),
    };
    Ok(Head::Found(FileMeta {
        commit,
        etag,
        size,
        location,
    }))
}

/// Maps an error status to the hub's meaning, from `X-Error-Code` as `hf_raise_for_status` does.
fn status_error(
    response: &Response,
    repo: &Repo,
    file: &str,
    url: &str,
    endpoint: &str,
) -> Result<Head> {
    let status = response.status;
    let code = response.header("x-error-code").unwrap_or("");
    let message = response.header("x-error-message").unwrap_or("").to_owned();
    let repo = repo.clone();
    Err(match code {
        "RevisionNotFound" => {
            let revision = repo.revision.clone();
            Error::RevisionNotFound { repo, revision }
        }
        "EntryNotFound" => {
            return Ok(Head::Missing {
                commit: response.header("x-repo-commit").map(str::to_owned),
            });
        }
        "GatedRepo" => Error::Gated { repo },
        "RepoNotFound" => Error::RepoNotFound {
            repo,
            endpoint: endpoint.to_owned(),
        },
        _ if status == 401 && message == "Invalid credentials in Authorization header" => {
            Error::Unauthorized { repo, status }
        }
        _ if status == 401 => Error::RepoNotFound {
            repo,
            endpoint: endpoint.to_owned(),
        },
        _ if status == 403 => Error::Unauthorized { repo, status },
        _ if status == 404 => {
            return Ok(Head::Missing {
                commit: response.header("x-repo-commit").map(str::to_owned),
            });
        }
        _ => Error::Http {
            status,
            url: url.to_owned(),
            message: if message.is_empty() {
                format!("while resolving {file}")
            } else {
                message
            },
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn etags() {
        assert_eq!(super::normalize_etag("W/\"abc\""), "abc");
        assert_eq!(super::normalize_etag("\"abc\""), "abc");
    }
}

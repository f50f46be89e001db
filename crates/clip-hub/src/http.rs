//! The HTTP side: one `ureq` agent with timeouts on every request, no automatic redirects (the callers
//! decide which to follow), the bearer token only towards the endpoint's own origin, and proxies chosen
//! per URL from [`ProxyConfig`] with our own `NO_PROXY` matching.
//!
//! ureq 3 reads proxies from the process environment by default, but picks `ALL_PROXY`, then
//! `HTTPS_PROXY`, then `HTTP_PROXY` whatever the URL's scheme, and its `NO_PROXY` entry `corp.com` does
//! not match `a.corp.com` (curl's and Python's do). So the agent is built with no proxy and each request
//! gets the proxy its scheme and host call for.

use std::time::Duration;

use ureq::{Agent, Body, Proxy};

use crate::config::HubConfig;
use crate::env::ProxyConfig;

/// A response: status, headers, and the body still to be read.
pub(crate) struct Response {
    pub(crate) status: u16,
    inner: ureq::http::Response<Body>,
}

impl Response {
    /// A header's value, if present and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as a reader (no size limit: blobs can be many GB).
    pub(crate) fn into_reader(self) -> impl std::io::Read {
        self.inner.into_body().into_reader()
    }
}

/// The request methods used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Head,
    Get,
}

/// The client.
pub(crate) struct Http {
    agent: Agent,
    token: Option<String>,
    endpoint: Option<Origin>,
    proxies: ProxyConfig,
}

impl Http {
    pub(crate) fn new(config: &HubConfig) -> Self {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_recv_response(Some(config.read_timeout))
            .timeout_per_read(Some(config.read_timeout))
            .timeout_send_request(Some(config.read_timeout))
            .user_agent(config.user_agent.as_str())
            .proxy(None)
            .build()
            .new_agent();
        Http {
            agent,
            token: config.token.clone(),
            endpoint: Origin::parse(&config.endpoint),
            proxies: config.proxy.clone(),
        }
    }

    /// Sends one request; `Err` is a transport failure (connect, timeout, TLS, protocol), worth a retry.
    pub(crate) fn send(
        &self,
        method: Method,
        url: &str,
        range_from: Option<u64>,
    ) -> Result<Response, String> {
        let origin = Origin::parse(url);
        let proxy = match origin.as_ref().and_then(|o| self.proxy_for(o)) {
            Some(p) => Some(Proxy::new(p).map_err(|e| format!("invalid proxy URL {p}: {e}"))?),
            None => None,
        };
        let mut headers: Vec<(&str, String)> = vec![("Accept-Encoding", "identity".to_owned())];
        if let (Some(token), true) = (&self.token, origin.is_some() && origin == self.endpoint) {
            headers.push(("Authorization", format!("Bearer {token}")));
        }
        if let Some(from) = range_from {
            headers.push(("Range", format!("bytes={from}-")));
        }
        let result = match method {
            Method::Head => {
                let mut req = self.agent.head(url);
                for (k, v) in &headers {
                    req = req.header(*k, v);
                }
                req.config().proxy(proxy).build().call()
            }
            Method::Get => {
                let mut req = self.agent.get(url);
                for (k, v) in &headers {
                    req = req.header(*k, v);
                }
                req.config().proxy(proxy).build().call()
            }
        };
        let inner = result.map_err(|e| e.to_string())?;
        Ok(Response {
            status: inner.status().as_u16(),
            inner,
        })
    }

    /// The proxy URL for a request to `origin`, if any.
    fn proxy_for(&self, origin: &Origin) -> Option<&str> {
        let proxy = match origin.scheme.as_str() {
            "https" => self.proxies.https.as_deref(),
            _ => self.proxies.http.as_deref(),
        }?;
        let bypass = self
            .proxies
            .no_proxy
            .iter()
            .any(|entry| no_proxy_matches(entry, &origin.host, origin.port));
        (!bypass).then_some(proxy)
    }
}

/// The wait before retry number `attempt` (1-based): the base delay doubled each time, at most 30 s.
pub(crate) fn backoff(config: &HubConfig, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    config
        .retry_base_delay
        .saturating_mul(factor)
        .min(Duration::from_secs(30))
}

/// Whether a status is worth retrying (timeouts, rate limits, server errors).
pub(crate) fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 429) || status >= 500
}

/// Scheme, lower-case host and port of a URL: what decides where a token may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    pub(crate) fn parse(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let authority = rest.split(['/', '?', '#']).next()?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p.parse().ok()?)),
            _ => (authority, None),
        };
        let default = if scheme == "https" { 443 } else { 80 };
        Some(Origin {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port: port.unwrap_or(default),
            scheme,
        })
    }
}

/// Resolves a `Location` header against the URL that sent it (absolute, `//host/…`, `/path` or relative).
pub(crate) fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = rest[authority_end..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{scheme}://{authority}{dir}{location}")
}

/// One `NO_PROXY` entry against a host: `*`; a name matching itself and its sub-domains (a leading `.` or
/// `*.` allowed); an IP or IPv4 CIDR block; any of these with `:port` to match that port only.
fn no_proxy_matches(entry: &str, host: &str, port: u16) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    if entry == "*" {
        return true;
    }
    let (pattern, entry_port) = match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => {
            (h.to_owned(), p.parse::<u16>().ok())
        }
        _ => (entry.clone(), None),
    };
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    let pattern = pattern
        .trim_start_matches("*.")
        .trim_start_matches('.')
        .trim_matches(['[', ']']);
    if let Some((net, bits)) = pattern.split_once('/') {
        return cidr_contains(net, bits, host);
    }
    host == pattern || host.ends_with(&format!(".{pattern}"))
}

/// Whether the IPv4 `host` lies in `net/bits`.
fn cidr_contains(net: &str, bits: &str, host: &str) -> bool {
    let (Ok(net), Ok(bits), Ok(host)) = (
        net.parse::<std::net::Ipv4Addr>(),
        bits.parse::<u32>(),
        host.parse::<std::net::Ipv4Addr>(),
    ) else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(net) & mask) == (u32::from(host) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches("*", "anything", 1));
        assert!(no_proxy_matches("corp.com", "corp.com", 443));
        assert!(no_proxy_matches("corp.com", "a.b.corp.com", 443));
        assert!(!no_proxy_matches("corp.com", "notcorp.com", 443));
        assert!(no_proxy_matches(".corp.com", "a.corp.com", 443));
        assert!(no_proxy_matches("*.corp.com", "a.corp.com", 443));
        assert!(no_proxy_matches("LocalHost:8080", "localhost", 8080));
        assert!(!no_proxy_matches("localhost:8080", "localhost", 80));
        assert!(no_proxy_matches("10.0.0.0/8", "10.2.3.4", 80));
        assert!(!no_proxy_matches("10.0.0.0/8", "11.2.3.4", 80));
        assert!(no_proxy_matches("127.0.0.1", "127.0.0.1", 80));
        assert!(no_proxy_matches("[::1]", "::1", 80));
    }

    #[test]
    fn origins_and_joins() {
        let a = Origin::parse("https://Huggingface.co/x").unwrap();
        assert_eq!(a, Origin::parse("https://huggingface.co:443/y").unwrap());
        assert_ne!(
            Origin::parse("http://127.0.0.1:5/a"),
            Origin::parse("http://localhost:5/a")
        );
        assert_eq!(join("http://h:1/a/b/c", "/d"), "http://h:1/d");
        assert_eq!(join("http://h:1/a/b/c?q", "d"), "http://h:1/a/b/d");
        assert_eq!(join("https://h/a", "//cdn/x"), "https://cdn/x");
        assert_eq!(join("https://h/a", "http://cdn/x"), "http://cdn/x");
    }
}

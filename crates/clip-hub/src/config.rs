//! How the client talks to the hub: endpoint, token, offline mode, retries, timeouts and proxies.
//!
//! A plain struct with public fields, built from the environment once ([`HubConfig::from_env`]) or
//! explicitly ([`HubConfig::new`], as the tests do so that they never depend on the process environment).

use std::time::Duration;

use crate::env::{self, Lookup, ProxyConfig};

/// Settings for [`Hub`](crate::Hub).
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// The hub's base URL without trailing `/` (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub endpoint: String,
    /// Sent as `Authorization: Bearer …`, only ever to the endpoint's own origin.
    pub token: Option<String>,
    /// Make no request at all; resolve from the cache only (`HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE`).
    pub offline: bool,
    /// Attempts per request before giving up (at least 1; 5 by default). A body download counts only the
    /// attempts in a row that brought no new bytes, so a connection cut repeatedly still finishes.
    pub retries: u32,
    /// The first wait between attempts; each further wait doubles, up to 30 s.
    pub retry_base_delay: Duration,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on waiting for the response head and on each read of the body (a stall, not a total).
    pub read_timeout: Duration,
    /// How long to wait on another process's download lock while its download makes no progress.
    pub lock_stall_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Proxies, matched per URL.
    pub proxy: ProxyConfig,
}

impl HubConfig {
    /// Settings for `endpoint` with no token, online, no proxy, and the default retries and timeouts.
    pub fn new(endpoint: impl Into<String>) -> Self {
        HubConfig {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            token: None,
            offline: false,
            retries: 5,
            retry_base_delay: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            lock_stall_timeout: Duration::from_secs(600),
            user_agent: format!("clip-hub/{}; hf_hub-compatible", env!("CARGO_PKG_VERSION")),
            proxy: ProxyConfig::default(),
        }
    }

    /// Settings read through `lookup` (see [`env`](crate::env) for each variable).
    pub fn from_lookup(lookup: Lookup<'_>) -> Self {
        HubConfig {
            token: env::token(lookup),
            offline: env::offline(lookup),
            proxy: ProxyConfig::from_lookup(lookup),
            ..HubConfig::new(env::endpoint(lookup))
        }
    }

    /// Settings from the process environment.
    pub fn from_env() -> Self {
        HubConfig::from_lookup(&env::process_env)
    }
}

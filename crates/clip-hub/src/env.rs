//! Settings from environment variables, as huggingface_hub 2.4.0's `constants.py` reads them.
//!
//! Every function takes a `lookup` closure instead of reading the process environment, so that tests can
//! pass a map and run in parallel; [`Cache::from_env`](crate::Cache::from_env) and
//! [`HubConfig::from_env`](crate::HubConfig::from_env) pass `std::env::var`. Two deliberate differences
//! from Python: a variable set to the empty string counts as unset, and only a leading `~` is expanded
//! (not `$VARS` inside values).

use std::path::PathBuf;

/// A way to read a variable: `Some(value)` when it is set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`].
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The first of `names` that is set to a non-empty value.
fn first(lookup: Lookup<'_>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| lookup(name).filter(|v| !v.is_empty()))
}

/// Expands a leading `~` with `HOME`, as `os.path.expanduser`.
fn expand_home(lookup: Lookup<'_>, value: String) -> PathBuf {
    match value.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = first(lookup, &["HOME"]).unwrap_or_else(|| "/".to_owned());
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(value),
    }
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home(lookup: Lookup<'_>) -> PathBuf {
    if let Some(home) = first(lookup, &["HF_HOME"]) {
        return expand_home(lookup, home);
    }
    let xdg = first(lookup, &["XDG_CACHE_HOME"]).unwrap_or_else(|| "~/.cache".to_owned());
    expand_home(lookup, xdg).join("huggingface")
}

/// The hub cache root: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`.
pub fn cache_root(lookup: Lookup<'_>) -> PathBuf {
    match first(lookup, &["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"]) {
        Some(root) => expand_home(lookup, root),
        None => hf_home(lookup).join("hub"),
    }
}

/// huggingface_hub's `_is_true`: `1`, `ON`, `YES` or `TRUE` in any case.
pub fn is_truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

/// `HF_HUB_OFFLINE`, else `TRANSFORMERS_OFFLINE`, is truthy (the first one set decides, as in Python).
pub fn offline(lookup: Lookup<'_>) -> bool {
    first(lookup, &["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"]).is_some_and(|v| is_truthy(&v))
}

/// `HF_ENDPOINT` without trailing `/`, else `https://huggingface.co`.
pub fn endpoint(lookup: Lookup<'_>) -> String {
    first(lookup, &["HF_ENDPOINT"])
        .map(|e| e.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| "https://huggingface.co".to_owned())
}

/// `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`), else the file `HF_TOKEN_PATH`, else
/// `$HF_HOME/token`; cleaned as huggingface_hub's `_clean_token` (line breaks removed, trimmed), empty
/// meaning none.
pub fn token(lookup: Lookup<'_>) -> Option<String> {
    let clean =
        |t: String| Some(t.replace(['\r', '\n'], "").trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(token) = first(lookup, &["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]) {
        return clean(token);
    }
    let path = match first(lookup, &["HF_TOKEN_PATH"]) {
        Some(path) => expand_home(lookup, path),
        None => hf_home(lookup).join("token"),
    };
    std::fs::read_to_string(path).ok().and_then(clean)
}

/// Proxy settings: `HTTPS_PROXY`/`HTTP_PROXY` (lower case first, as curl and Python read them, then upper
/// case), `ALL_PROXY` for either when unset, and `NO_PROXY`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Proxy for `http://` URLs.
    pub http: Option<String>,
    /// Proxy for `https://` URLs.
    pub https: Option<String>,
    /// `NO_PROXY` entries: host names (matching sub-domains too), `.suffix`, `*`, IPs, IPv4 CIDR blocks,
    /// each optionally with `:port`.
    pub no_proxy: Vec<String>,
}

impl ProxyConfig {
    /// Reads the proxy variables through `lookup`.
    pub fn from_lookup(lookup: Lookup<'_>) -> Self {
        let all = first(lookup, &["all_proxy", "ALL_PROXY"]);
        let no_proxy = first(lookup, &["no_proxy", "NO_PROXY"]).unwrap_or_default();
        ProxyConfig {
            http: first(lookup, &["http_proxy", "HTTP_PROXY"]).or_else(|| all.clone()),
            https: first(lookup, &["https_proxy", "HTTPS_PROXY"]).or(all),
            no_proxy: no_proxy
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn cache_root_precedence() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("HOME", "/h")], "/h/.cache/huggingface/hub"),
            (
                &[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")],
                "/x/huggingface/hub",
            ),
            (
                &[
                    ("HOME", "/h"),
                    ("XDG_CACHE_HOME", "/x"),
                    ("HF_HOME", "~/hf"),
                ],
                "/h/hf/hub",
            ),
            (
                &[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/old")],
                "/old",
            ),
            (
                &[("HUGGINGFACE_HUB_CACHE", "/old"), ("HF_HUB_CACHE", "/new")],
                "/new",
            ),
            (&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "")], "/hf/hub"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                cache_root(&env(pairs)),
                PathBuf::from(expected),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn flags_endpoint_token() {
        for (value, expected) in [
            ("1", true),
            ("on", true),
            ("Yes", true),
            ("TRUE", true),
            ("0", false),
            ("no", false),
        ] {
            assert_eq!(
                offline(&env(&[("HF_HUB_OFFLINE", value)])),
                expected,
                "{value}"
            );
        }
        assert!(offline(&env(&[("TRANSFORMERS_OFFLINE", "1")])));
        assert!(!offline(&env(&[
            ("HF_HUB_OFFLINE", "0"),
            ("TRANSFORMERS_OFFLINE", "1")
        ])));
        assert_eq!(endpoint(&env(&[])), "https://huggingface.co");
        assert_eq!(
            endpoint(&env(&[("HF_ENDPOINT", "http://mirror:8080//")])),
            "http://mirror:8080"
        );
        assert_eq!(
            token(&env(&[("HF_TOKEN", " hf_abc\n")])),
            Some("hf_abc".to_owned())
        );
        assert_eq!(token(&env(&[("HF_HOME", "/nonexistent/hf")])), None);
    }

    #[test]
    fn proxies() {
        let e = env(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("https_proxy", "http://q:2"),
            ("ALL_PROXY", "http://a:3"),
            ("NO_PROXY", "localhost, .corp ,"),
        ]);
        let p = ProxyConfig::from_lookup(&e);
        assert_eq!(p.https.as_deref(), Some("http://q:2"));
        assert_eq!(p.http.as_deref(), Some("http://a:3"));
        assert_eq!(p.no_proxy, vec!["localhost".to_owned(), ".corp".to_owned()]);
    }
}

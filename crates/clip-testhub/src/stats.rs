//! What the server saw: a count per (method, path), body bytes per file, and a log of every request.

use std::collections::BTreeMap;

/// One request as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// `HEAD`, `GET`, …
    pub method: String,
    /// The path (percent-encoded as sent, without the query).
    pub path: String,
    /// The `Host` header.
    pub host: String,
    /// Whether an `Authorization` header was present.
    pub authorization: bool,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

/// The counters.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Requests per (method, path).
    pub requests: BTreeMap<(String, String), u64>,
    /// Body bytes written per file key (`org/name/path` or `datasets/org/name/path`).
    pub bytes: BTreeMap<String, u64>,
    /// Every request in order.
    pub log: Vec<LoggedRequest>,
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Stats {
    /// The counters as JSON: `{"requests": [{"method", "path", "count"}], "bytes": {key: n}, "log": [...]}`.
    pub fn to_json(&self) -> String {
        let requests: Vec<String> = self
            .requests
            .iter()
            .map(|((m, p), n)| {
                format!(
                    "{{\"method\":{},\"path\":{},\"count\":{n}}}",
                    json_str(m),
                    json_str(p)
                )
            })
            .collect();
        let bytes: Vec<String> = self
            .bytes
            .iter()
            .map(|(k, n)| format!("{}:{n}", json_str(k)))
            .collect();
        let log: Vec<String> = self
            .log
            .iter()
            .map(|r| {
                format!(
                    "{{\"method\":{},\"path\":{},\"host\":{},\"authorization\":{},\"range\":{}}}",
                    json_str(&r.method),
                    json_str(&r.path),
                    json_str(&r.host),
                    r.authorization,
                    r.range.as_deref().map_or("null".to_owned(), json_str)
                )
            })
            .collect();
        format!(
            "{{\"requests\":[{}],\"bytes\":{{{}}},\"log\":[{}]}}",
            requests.join(","),
            bytes.join(","),
            log.join(",")
        )
    }
}

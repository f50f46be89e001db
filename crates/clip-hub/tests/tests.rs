//! clip-hub against the loopback hub (clip-testhub): loopback only, each test with its own folders and
//! an explicit `HubConfig`, so they run in parallel and never read the process environment.

/// Fixtures: a served folder, a cache, a config.
mod common;
/// Missing repos, files and revisions, tokens and where they go, proxies, network failures.
mod errors;
/// Cut connections, left-behind partial files, ignored ranges, corruption, stalls, concurrency.
mod faults;
/// Fresh fetches, the cache layout, second calls, offline mode, datasets and nested paths.
mod fetch;
/// Environment parsing and caches written by Python's huggingface_hub.
mod interop;
/// Plain URLs with a known SHA-256.
mod url;

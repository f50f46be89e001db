//! Criterion benchmarks of the clip-rs crates; see `benches/`. The library itself is empty.

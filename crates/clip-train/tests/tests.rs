//! Tests of clip-train's library parts; whole runs (resume, data parallelism, faults) are tested
//! through the `clip` binary in clip-cli's tests.

mod config; // TOML and --set: defaults, overrides, unknown keys and bad values named
mod optim; // AdamW equals torch.optim.AdamW; open_clip's decay groups; schedules

//! clip-pretrained integration tests.

/// The (model, tag) registry against its JSON and clip-model's presets.
mod registry;

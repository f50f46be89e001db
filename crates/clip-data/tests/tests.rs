//! Integration tests of clip-data (no libtorch needed).

mod preprocess; // evaluation preprocessing equals PIL + torchvision on real photos of every mode
mod builtin; // the procedural dataset is deterministic, captions describe the scenes, tasks are balanced

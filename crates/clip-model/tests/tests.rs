//! Integration tests of clip-model, one binary (each test binary links libtorch).

mod parity; // tiny models of both families give open_clip's features from the same weights
mod shapes; // every preset builds with the checkpoint's key layout and output shapes
mod formats; // OpenAI TorchScript and Hugging Face files load to the same features; bad files are clear errors

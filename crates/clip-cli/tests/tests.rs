//! End-to-end tests of the `clip` binary, one test binary (each links libtorch).

mod bench; // bench-zeroshot on native, built-in and custom sets; the linear probe with few-shot and saved features
mod bench_data; // clip bench-data measures a source and reports skips by reason, as JSON too
mod convert; // every weights format becomes open_clip-layout safetensors that load to the same model
mod doctor; // runs without LD_LIBRARY_PATH and reports what it loaded
mod embed; // clip embed writes the library's normalised features as .npy, skipping unreadable images
mod embed_at_scale; // clip embed --source: clip-retrieval's layout, resumed after SIGKILL byte for byte, 2 ranks equal 1
mod hub; // models, tags and datasets from a loopback hub: fetch, resume, refuse, offline, ranks, classify
mod launch; // clip launch and torchrun run multi-rank jobs of the clip binary on loopback
mod support;
mod tokenize; // stdin lines to JSON id rows, in order, invalid UTF-8 replaced with a warning
mod train; // clip train resumes bitwise after SIGKILL, 2 ranks × B (or 2 accumulated batches) equal 1 × 2B, faults are counted
mod video; // bench-zeroshot over UCF101's videos: the middle frame via ffmpeg, cached, splits averaged, bad clips counted

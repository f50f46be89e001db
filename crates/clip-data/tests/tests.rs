//! Integration tests of clip-data.

mod builtin; // the procedural dataset is deterministic, captions describe the scenes, tasks are balanced
mod loader; // determinism across thread counts, exact resume, rank split, resampling, skip limits
mod native; // CIFAR, MNIST and STL-10 binary readers; splits found in every layout
mod preprocess; // evaluation preprocessing equals open_clip's on real photos of every mode, for every interpolation and resize mode
mod sources; // every source yields and skips exactly what it should, bad input included
mod support;
mod transform; // the training transform's crops follow torchvision, its resize follows PIL

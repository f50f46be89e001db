//! Integration tests of clip-data (no libtorch needed).

mod preprocess; // evaluation preprocessing equals PIL + torchvision on real photos of every mode

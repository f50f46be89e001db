//! Zero-shot classification of the committed photos with the high-level entry.
//!
//!     cargo run --release -p clip-rs --example zero_shot                      # the tiny committed model
//!     cargo run --release -p clip-rs --example zero_shot -- ViT-B-32 openai   # released weights, via the hub cache
//!
//! The tiny model's weights are random, so its guesses are too; ViT-B-32 at `openai` names the
//! cat, the rocket and the coffee.
#![allow(clippy::print_stdout)] // an example's output is its result

use clip_rs::{Clip, Hub};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let photos = ["chelsea.png", "coffee.png", "camera.png", "logo.png", "rocket.jpg"].map(|f| format!("{root}/clip-data/tests/fixtures/images/{f}"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clip = match args.as_slice() {
        [model, tag] => Clip::pretrained(model, tag, &Hub::from_env())?,
        _ => Clip::from_files(
            format!("{root}/clip-cli/tests/fixtures/tiny-hub/open_clip_config.json"),
            format!("{root}/clip-cli/tests/fixtures/tiny-hub/open_clip_model.safetensors"),
        )?,
    };
    let classifier = clip.zero_shot(&["a cat", "a rocket", "a cup of coffee", "a diagram"], &["a photo of {}."])?;
    for (photo, guess) in photos.iter().zip(classifier.classify(&photos)?) {
        let name = photo.rsplit('/').next().unwrap_or(photo);
        println!("{name:<12} {:<16} {:.3}   (all: {:.3?})", guess.label, guess.probability, guess.probabilities);
    }
    Ok(())
}

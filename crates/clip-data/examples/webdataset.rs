//! Iterates WebDataset shards with the loader: two shards written to a temporary folder (the
//! committed photos with captions, a corrupt PNG, a decompression bomb, a caption without its
//! image, and generated samples), read in batches of 4 with open_clip's training transform and
//! tokenised captions; each batch's keys and shapes are printed, and the skips counted by reason.
//!
//!     cargo run --release -p clip-data --example webdataset
#![allow(clippy::print_stdout)] // an example's output is its result

#[path = "../tests/support.rs"]
#[allow(dead_code)] // the example uses a few of the test fixtures' writers
mod support;

use clip_data::source::SourceOptions;
use clip_data::transform::TrainTransform;
use clip_data::{ImageTransform, Loader, LoaderConfig, SkipCounts, Source, TextMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("clip-data-webdataset-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let photos = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/images");
    let mut members = Vec::new();
    for (key, file, caption) in [("cat", "chelsea.png", "a cat"), ("rocket", "rocket.jpg", "a rocket"), ("coffee", "coffee.png", "a cup of coffee")] {
        let bytes = std::fs::read(format!("{photos}/{file}"))?;
        let extension = file.rsplit('.').next().unwrap_or("jpg");
        members.push((format!("{key}.{extension}"), bytes));
        members.push((format!("{key}.txt"), caption.as_bytes().to_vec()));
    }
    members.extend([("corrupt.png".to_owned(), support::png_bad_crc(1)), ("corrupt.txt".to_owned(), b"a broken PNG".to_vec())]);
    members.extend([("bomb.jpg".to_owned(), support::jpeg_bomb()), ("bomb.txt".to_owned(), b"60000 x 60000 pixels".to_vec())]);
    members.push(("lonely.txt".to_owned(), b"a caption without an image".to_vec()));
    std::fs::write(dir.join("shard-00.tar"), support::tar(&members))?;
    support::write_shard(&dir, "shard-01.tar", 6);

    let source = Source::parse(&format!("wds:{}/shard-{{00..01}}.tar", dir.display()), &SourceOptions::default())?;
    let mut config = LoaderConfig::new(4, ImageTransform::Train(TrainTransform::open_clip(64)), TextMode::Tokens { context_length: 77 });
    config.drop_last = false;
    config.seed = 7;
    config.max_skip_fraction = 0.5; // this shard is damaged on purpose
    let loader = Loader::new(source, config)?;
    let mut batches = loader.epoch(0)?;
    let mut skipped = SkipCounts::default();
    for batch in batches.by_ref() {
        let batch = batch?;
        let texts = batch.texts.as_ref().map(|t| t.size()).unwrap_or_default();
        let keys: Vec<&str> = batch.keys.iter().map(|k| k.rsplit('/').next().unwrap_or(k)).collect(); // shard path / key
        println!("batch: images {:?}, token ids {texts:?}, keys {keys:?}", batch.images.size());
        skipped.merge(&batch.skipped);
    }
    skipped.merge(&batches.tail().skipped);
    println!("skipped {} samples: {skipped}", skipped.samples());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

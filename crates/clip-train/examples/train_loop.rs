//! A training run on a data source of your own: a CSV table of (image, caption) pairs over the
//! committed photos, the built-in tiny CLIP, two epochs on the CPU, and every `Event` the
//! trainer sends printed as it comes (steps, checkpoints, the zero-shot evaluation at the end).
//!
//!     cargo run --release -p clip-train --example train_loop
#![allow(clippy::print_stdout)] // an example's output is its result

use clip_train::{Event, TrainConfig, train};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("clip-train-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let photos = concat!(env!("CARGO_MANIFEST_DIR"), "/../clip-data/tests/fixtures/images");
    let mut rows = String::from("filepath,title\n");
    for i in 0..16 {
        let (file, caption) =
            [("chelsea.png", "a cat"), ("rocket.jpg", "a rocket"), ("coffee.png", "a cup of coffee"), ("camera.png", "a man with a camera")][i % 4];
        rows.push_str(&format!("{photos}/{file},{caption} {i}\n"));
    }
    std::fs::write(dir.join("pairs.csv"), rows)?;
    // The keys of `clip train --set` (docs/config.md lists them all).
    let overrides = [
        format!("output={}", dir.join("run").display()),
        format!("data.source=csv:{}", dir.join("pairs.csv").display()),
        "data.batch_size=8".into(),
        "data.samples_per_epoch=0".into(), // the whole table each epoch
        "optim.epochs=2".into(),
        "optim.warmup=2".into(),
        "checkpoint.every=2".into(),
        "eval.tasks=[\"colour\"]".into(),
        "eval.samples=64".into(),
    ];
    let config = TrainConfig::load(None, &overrides)?;
    let summary = train(&config, None, |event| match event {
        Event::Start { step, total_steps, parameters, world_size } => {
            println!("start at step {step} of {total_steps}: {parameters} parameters, {world_size} rank(s)");
        }
        Event::Step(m) => {
            println!("step {:>2}/{}  epoch {}  loss {:.4}  lr {:.2e}  logit scale {:.2}", m.step, m.total_steps, m.epoch, m.loss, m.lr, m.logit_scale)
        }
        Event::Eval(e) => println!("evaluation after step {}: zero-shot top-1 {:?}", e.step, e.top1),
        Event::Checkpoint(path) => println!("checkpoint {}", path.display()),
        Event::CheckpointFailed(error) => println!("checkpoint failed (training goes on): {error}"),
    })?;
    println!("{} steps, {} samples, {:.1} samples/s, final loss {:.4}", summary.steps, summary.samples, summary.samples_per_s, summary.final_loss);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

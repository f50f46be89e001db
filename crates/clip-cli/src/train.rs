//! `clip train`: runs clip-train and owns what the user sees: a progress line (step, loss, lr,
//! samples/s, ETA) on rank 0, evaluation results, checkpoint notices, the final summary.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clip_train::{Event, TrainConfig};

pub(crate) fn run(config: Option<PathBuf>, set: &[String], resume: Option<&str>) -> Result<()> {
    let config = TrainConfig::load(config.as_deref(), set)?;
    fetch_model(&config)?;
    let main = std::env::var("RANK").map_or(true, |r| r == "0");
    let started = Instant::now();
    let mut first_step = 0;
    let summary = clip_train::train(&config, resume, |event| {
        if !main {
            return;
        }
        match event {
            Event::Start { step, total_steps, parameters, world_size } => {
                first_step = step;
                eprintln!(
                    "clip train: {} trainable parameters, {world_size} rank(s), steps {}..{total_steps}, run folder {}",
                    parameters,
                    step + 1,
                    config.output.display()
                );
            }
            Event::Step(m) => {
                let done = (m.step - first_step) as f64;
                let eta = started.elapsed().as_secs_f64() / done.max(1.0) * (m.total_steps - m.step) as f64;
                eprint!(
                    "\r[{:>6}/{}] epoch {} loss {:.4} lr {:.2e} scale {:.1} {:.0} samples/s ETA {:.0} s{}   ",
                    m.step,
                    m.total_steps,
                    m.epoch,
                    m.loss,
                    m.lr,
                    m.logit_scale,
                    m.samples_per_s,
                    eta,
                    if m.skipped_step { " (non-finite: step skipped)" } else { "" }
                );
                let _ = std::io::stderr().flush();
            }
            Event::Eval(e) => {
                let parts: Vec<String> = e.top1.iter().map(|(t, a)| format!("{t} {:.1}%", 100.0 * a)).collect();
                eprintln!("\nstep {}: zero-shot top-1: {}", e.step, parts.join(", "));
            }
            Event::Checkpoint(path) => eprintln!("\ncheckpoint: {}", path.display()),
            Event::CheckpointFailed(e) => eprintln!("\nwarning: checkpoint not written ({e}); the previous one is intact"),
        }
    })?;
    if main {
        eprintln!();
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

/// Fetches what `[model]` names (pretrained weights, a hub tokenizer) into the hub cache, which is
/// all the trainer reads. Every rank asks; the cache's lock has one of them download.
fn fetch_model(config: &TrainConfig) -> Result<()> {
    let hub = crate::hub::hub(false);
    let mut downloads = crate::hub::Downloads::new("clip train");
    let notes = clip_train::trainer::fetch_model(config, &hub, &mut |p| downloads.event(p)).context("fetching what [model] names")?;
    for note in &notes {
        eprintln!("clip train: note: {note}");
    }
    Ok(())
}

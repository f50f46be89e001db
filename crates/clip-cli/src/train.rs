//! `clip train`: runs clip-train and owns what the user sees on rank 0: a progress bar (step,
//! loss, lr, scale, samples/s, ETA; plain lines off a terminal, nothing under `--quiet`),
//! evaluation results and checkpoint notices above it, `curves.png` redrawn at each evaluation
//! and at the end, and the closing summary table (stderr; the summary JSON goes to stdout).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clip_train::{Event, Summary, TrainConfig};

use crate::progress::{Bar, Unit, note};

pub(crate) fn run(config: Option<PathBuf>, set: &[String], resume: Option<&str>) -> Result<()> {
    let config = TrainConfig::load(config.as_deref(), set)?;
    fetch_model(&config)?;
    let main = std::env::var("RANK").map_or(true, |r| r == "0");
    let mut bar: Option<Bar> = None;
    let output = config.output.clone();
    let summary = clip_train::train(&config, resume, |event| {
        if !main {
            return;
        }
        match event {
            Event::Start { step, total_steps, parameters, world_size } => {
                note(&format!(
                    "clip train: {parameters} trainable parameters, {world_size} rank(s), steps {}..{total_steps}, run folder {}",
                    step + 1,
                    output.display()
                ));
                let mut b = Bar::new("clip train", Some(total_steps), Unit::Count("steps"));
                b.start_at(step);
                bar = Some(b);
            }
            Event::Step(m) => {
                if let Some(b) = &mut bar {
                    b.set_message(format!(
                        "epoch {} loss {:.4} lr {:.2e} scale {:.1} {:.0} samples/s{}",
                        m.epoch,
                        m.loss,
                        m.lr,
                        m.logit_scale,
                        m.samples_per_s,
                        if m.skipped_step { " (non-finite: step skipped)" } else { "" }
                    ));
                    b.set_position(m.step);
                }
            }
            Event::Eval(e) => {
                let parts: Vec<String> = e.top1.iter().map(|(t, a)| format!("{t} {:.1}%", 100.0 * a)).collect();
                let redrawn = crate::plot::redraw(&output);
                if let Some(b) = &bar {
                    b.println(&format!("clip train: step {}: zero-shot top-1: {}", e.step, parts.join(", ")));
                    if let Err(err) = redrawn {
                        b.warn(&format!("clip train: warning: curves.png not drawn: {err:#}"));
                    }
                }
            }
            Event::Checkpoint(path) => {
                if let Some(b) = &bar {
                    b.println(&format!("clip train: checkpoint {}", path.display()));
                }
            }
            Event::CheckpointFailed(e) => {
                let text = format!("clip train: warning: checkpoint not written ({e}); the previous one is intact");
                match &bar {
                    Some(b) => b.warn(&text),
                    None => eprintln!("{text}"),
                }
            }
        }
    });
    if let Some(mut b) = bar.take() {
        b.finish();
    }
    let summary = summary?;
    if main {
        let curves = crate::plot::redraw(&output).context("drawing curves.png")?;
        if !crate::progress::quiet() {
            eprint!("{}", table(&summary, &curves));
        }
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

/// The closing summary as an aligned two-column table.
fn table(s: &Summary, curves: &Path) -> String {
    let best = match (&s.best_eval, s.eval.as_ref()) {
        (Some((mean, step)), _) => format!("mean zero-shot top-1 {:.1}% at step {step}", 100.0 * mean),
        (None, _) => "none (no evaluation tasks)".to_owned(),
    };
    let last = s.eval.as_ref().map_or_else(
        || "-".to_owned(),
        |e| format!("{} (step {})", e.top1.iter().map(|(t, a)| format!("{t} {:.1}%", 100.0 * a)).collect::<Vec<_>>().join(", "), e.step),
    );
    let skipped = if s.skipped.is_empty() {
        "none".to_owned()
    } else {
        s.skipped.iter().map(|(reason, n)| format!("{reason} {n}")).collect::<Vec<_>>().join(", ")
    };
    let rows = [
        ("steps", format!("{} ({} in this process)", s.steps, s.steps_this_process)),
        ("samples", s.samples.to_string()),
        ("time", format!("{:.1} s", s.seconds)),
        ("samples/s", format!("{:.1}", s.samples_per_s)),
        ("final loss", format!("{:.4}", s.final_loss)),
        ("best evaluation", best),
        ("last evaluation", last),
        ("checkpoint", s.checkpoint.as_ref().map_or_else(|| "-".to_owned(), |p| p.display().to_string())),
        ("skipped samples", skipped),
        ("non-finite steps", s.nonfinite_steps.to_string()),
        ("curves", curves.display().to_string()),
    ];
    let mut out = String::from("clip train: summary\n");
    for (key, value) in rows {
        out.push_str(&format!("  {key:<17} {value}\n"));
    }
    out
}

/// Fetches what `[model]` names (pretrained weights, a hub tokenizer) into the hub cache, which is
/// all the trainer reads. Every rank asks; the cache's lock has one of them download.
fn fetch_model(config: &TrainConfig) -> Result<()> {
    let hub = crate::hub::hub(false);
    let mut downloads = crate::hub::Downloads::new("clip train");
    let notes = clip_train::trainer::fetch_model(config, &hub, &mut |p| downloads.event(p)).context("fetching what [model] names")?;
    for n in &notes {
        note(&format!("clip train: note: {n}"));
    }
    Ok(())
}

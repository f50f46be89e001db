use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tch::Tensor;

/// A model small enough for many short runs in a test.
const MICRO: &str = r#"{"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
 "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}"#;

/// SigLIP's text tower on the micro ViT: no causal mask, the last token pooled, a projection bias,
/// LayerNorm eps 1e-6, the config's own logit bias, and a SentencePiece tokenizer with SigLIP's
/// `canonicalize` cleaning (clip-tokenizer's unigram fixture: 800 pieces and T5's 100 extra ids).
fn siglip_micro() -> String {
    let tokenizer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip-tokenizer/tests/fixtures/hf/unigram-spm");
    format!(
        r#"{{"embed_dim": 32, "init_logit_bias": -10, "custom_text": true,
 "vision_cfg": {{"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16}},
 "text_cfg": {{"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1, "no_causal_mask": true,
  "proj_bias": true, "pool_type": "last", "norm_kwargs": {{"eps": 1e-06}}, "hf_tokenizer_name": {name},
  "tokenizer_kwargs": {{"clean": "canonicalize"}}}}}}"#,
        name = serde_json::json!(tokenizer.canonicalize().unwrap())
    )
}

/// A run folder with the micro model's config and a base configuration.
fn setup(dir: &Path, extra: &str) -> PathBuf {
    setup_model(dir, MICRO, extra)
}

/// A run folder with model config `model` and the base configuration.
fn setup_model(dir: &Path, model: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("micro.json"), model).unwrap();
    let config = dir.join("train.toml");
    std::fs::write(
        &config,
        format!(
            "output = \"{out}\"\n[model]\nconfig = \"{model}\"\n[data]\nbatch_size = 8\nsamples_per_epoch = 128\n\
             [optim]\nepochs = 2\nwarmup = 4\n[checkpoint]\nevery = 8\nkeep = 10\n[eval]\nsamples = 20\ntasks = [\"colour\"]\n{extra}",
            out = dir.join("run").display(),
            model = dir.join("micro.json").display()
        ),
    )
    .unwrap();
    config
}

fn clip(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clip"));
    command.args(args).env("OMP_NUM_THREADS", "1");
    command
}

fn check(output: Output) -> Output {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn train(config: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--config", config.to_str().unwrap()];
    args.extend(extra);
    clip(&args).output().unwrap()
}

/// `(step, loss)` of every step line of a metrics log, in order.
fn losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

fn weights(path: &Path) -> Vec<(String, Tensor)> {
    let mut tensors = clip_tensor::safetensors::read_safetensors(path).unwrap();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

/// The weights of a run's last checkpoint.
fn final_weights(run: &Path) -> Vec<(String, Tensor)> {
    weights(&last_checkpoint(run).join("model.safetensors"))
}

/// Starts `clip train --config CONFIG EXTRA…` and SIGKILLs it once the step-8 checkpoint exists
/// and steps past it have been logged (so the resume must drop them).
fn kill_after_first_checkpoint(config: &Path, run: &Path, extra: &[&str]) {
    let mut args = vec!["train", "--config", config.to_str().unwrap()];
    args.extend(extra);
    let mut child = clip(&args).stderr(std::process::Stdio::null()).spawn().unwrap();
    let marker = run.join("checkpoints/step-00000008");
    let start = Instant::now();
    while !(marker.exists() && losses(run).last().is_some_and(|l| l.0 % 8 >= 2)) {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: plain signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
}

fn last_checkpoint(run: &Path) -> PathBuf {
    let name = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap();
    run.join("checkpoints").join(name.trim())
}

/// Two runs of the base configuration, with `flags` and without, in a temporary folder that also
/// has an empty `killed/` for a third; returns the folder and the two run folders.
fn with_and_without(flags: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let [whole, plain] = ["whole", "plain"].map(|name| {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        folder
    });
    std::fs::create_dir_all(dir.path().join("killed")).unwrap();
    check(train(&setup(&whole, ""), flags));
    check(train(&setup(&plain, ""), &[]));
    (dir, whole.join("run"), plain.join("run"))
}

/// Runs `config` with `flags`, kills it after its first checkpoint, resumes it, and checks that its
/// losses and final weights equal the uninterrupted run in `whole`, bit for bit.
fn killed_run_resumes_as(config: &Path, flags: &[&str], whole: &Path) {
    let run = config.parent().unwrap().join("run");
    kill_after_first_checkpoint(config, &run, flags);
    assert!(losses(&run).len() < losses(whole).len(), "the run was killed before its end");
    check(train(config, &[&["--resume", "latest"], flags].concat()));
    assert_eq!(loss_bits(whole), loss_bits(&run));
    assert_final_weights_equal(whole, &run, "after resuming");
}

/// A run's logged losses, step by step, as bits.
fn loss_bits(run: &Path) -> Vec<(u64, u64)> {
    losses(run).into_iter().map(|(step, loss)| (step, loss.to_bits())).collect()
}

/// The last checkpoints of runs `a` and `b` hold the same weights, bit for bit; `what` says how
/// `b` was run, for the message.
fn assert_final_weights_equal(a: &Path, b: &Path, what: &str) {
    let (wa, wb) = (final_weights(a), final_weights(b));
    assert_eq!(wa.len(), wb.len());
    for ((name, x), (_, y)) in wa.iter().zip(&wb) {
        assert!(x.equal(y), "{name} differs {what}: {}", (x - y).abs().max().double_value(&[]));
    }
}

/// Pixel size and the share of coloured pixels (lines, bars: not white, grey or black) of a PNG.
fn png_ink(path: &Path) -> ((u32, u32), f64) {
    let image = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let coloured = image.pixels().filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 40).count();
    (image.dimensions(), coloured as f64 / f64::from(image.width() * image.height()))
}

/// Every scalar of a run's TensorBoard event files, CRCs checked: tag → [(step, value)] in file
/// order.
fn tensorboard_scalars(run: &Path) -> std::collections::BTreeMap<String, Vec<(i64, f32)>> {
    let mut out: std::collections::BTreeMap<String, Vec<(i64, f32)>> = Default::default();
    let files = clip_train::tensorboard::event_files(&run.join("tensorboard")).unwrap();
    assert!(!files.is_empty(), "no event files");
    for file in files {
        let events = clip_train::tensorboard::read_events(&file).unwrap();
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"), "{}", file.display());
        for event in events {
            for (tag, value) in event.scalars {
                out.entry(tag).or_default().push((event.step, value));
            }
        }
    }
    out
}

/// The TensorBoard scalars are metrics.jsonl's, each step once, under open_clip's tags.
fn check_tensorboard(run: &Path, steps: u64) {
    let scalars = tensorboard_scalars(run);
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expect = |key: &str| -> Vec<(i64, f32)> {
        lines.iter().filter(|v| v.get("loss").is_some()).map(|v| (v["step"].as_i64().unwrap(), v[key].as_f64().unwrap() as f32)).collect()
    };
    for (tag, key) in [("train/loss", "loss"), ("train/lr", "lr"), ("train/scale", "logit_scale"), ("train/samples_per_second", "samples_per_s"), ("train/skipped_samples", "skipped"), ("train/nonfinite_steps", "nonfinite_steps")] {
        let (got, want) = (&scalars[tag], expect(key));
        assert_eq!(got.len() as u64, steps, "{tag}: {got:?}");
        assert_eq!(got, &want, "{tag}");
    }
    let evals: Vec<(i64, f32)> = lines.iter().filter_map(|v| Some((v["step"].as_i64()?, v.get("top1")?["colour"].as_f64()? as f32))).collect();
    assert!(!evals.is_empty());
    assert_eq!(scalars["val/colour-zeroshot-val-top1"], evals);
    assert_eq!(scalars.len(), 7, "{:?}", scalars.keys().collect::<Vec<_>>());
}

#[test]
fn a_killed_run_resumes_bitwise_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    std::fs::create_dir_all(&whole).unwrap();
    std::fs::create_dir_all(&killed).unwrap();
    // The uninterrupted run: curves.png, the summary table and progress lines (stderr is a pipe).
    let output = check(train(&setup(&whole, ""), &["--set", "eval.every=8"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains('\r'), "no bar off a terminal: {stderr}");
    assert!(stderr.contains("clip train: 32/32 steps in "), "the bar's closing line: {stderr}");
    assert!(stderr.contains("clip train: summary"), "{stderr}");
    for (key, value) in [("steps", "32"), ("final loss", "."), ("best evaluation", "mean zero-shot top-1"), ("skipped samples", "none"), ("checkpoint", "step-00000032"), ("curves", "curves.png")] {
        assert!(stderr.lines().any(|l| l.trim_start().starts_with(key) && l.contains(value)), "{key}: {value}: {stderr}");
    }
    assert!(stderr.contains("step 16: zero-shot top-1: colour "), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(summary["checkpoint"].as_str().unwrap().ends_with("step-00000032") && summary["best_eval"][1].as_u64().is_some(), "{summary}");
    let (size, ink) = png_ink(&whole.join("run/curves.png"));
    assert_eq!(size, (1400, 900));
    assert!(ink > 0.003, "curves.png has lines: {ink}");
    assert!(!whole.join("run/loss.png").exists());

    // Killed after steps past its last checkpoint were logged (to TensorBoard too), then resumed.
    let config = setup(&killed, "");
    let sets = ["--set", "eval.every=8", "--set", "report_to=[\"tensorboard\"]"];
    kill_after_first_checkpoint(&config, &killed.join("run"), &sets);
    let logged = losses(&killed.join("run"));
    assert!(logged.len() < 32, "the run was killed before its end ({} steps logged)", logged.len());
    let checkpoint: u64 = last_checkpoint(&killed.join("run")).file_name().unwrap().to_str().unwrap()[5..].parse().unwrap();
    let before = tensorboard_scalars(&killed.join("run"));
    assert!(before["train/loss"].iter().any(|s| s.0 as u64 > checkpoint), "steps after checkpoint {checkpoint} were logged before the kill");
    let resumed = train(&config, &["--resume", "latest", sets[0], sets[1], sets[2], sets[3]]);
    check(resumed);
    let (a, b) = (losses(&whole.join("run")), losses(&killed.join("run")));
    assert_eq!(a.len(), 32);
    assert_eq!(a.iter().map(|x| x.0).collect::<Vec<_>>(), b.iter().map(|x| x.0).collect::<Vec<_>>());
    for ((step, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x.to_bits(), y.to_bits(), "step {step}: {x} vs {y}");
    }
    assert_final_weights_equal(&whole.join("run"), &killed.join("run"), "after resuming");
    // Two event files, every step once, values as metrics.jsonl; the second opens with the purge.
    check_tensorboard(&killed.join("run"), 32);
    let files = clip_train::tensorboard::event_files(&killed.join("run/tensorboard")).unwrap();
    assert_eq!(files.len(), 2);
    let second = clip_train::tensorboard::read_events(&files[1]).unwrap();
    assert!(second[1].session_start && second[1].step as u64 == checkpoint + 1, "{:?}", &second[..2]);

    // clip plot overlays both runs; several runs need --out.
    let out = dir.path().join("both.png");
    let plotted = check(clip(&["plot", whole.join("run").to_str().unwrap(), killed.join("run").to_str().unwrap(), "--out", out.to_str().unwrap()]).output().unwrap());
    assert_eq!(String::from_utf8_lossy(&plotted.stdout).trim(), out.to_str().unwrap());
    let (size, both) = png_ink(&out);
    assert!(size == (1400, 900) && both > ink, "{both} vs {ink}");
    let refused = clip(&["plot", whole.join("run").to_str().unwrap(), killed.join("run").to_str().unwrap()]).output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("--out"));
}

/// A CRC32C test vector (RFC 3720's check value) and a damaged record is refused.
#[test]
fn tensorboard_records_are_framed_with_masked_crc32c() {
    let crc = crc_check(b"123456789");
    assert_eq!(crc, 0xE306_9283);
    let dir = tempfile::tempdir().unwrap();
    let mut writer = clip_train::tensorboard::EventWriter::create(dir.path(), None).unwrap();
    writer.scalars(3, &[("train/loss", 2.5), ("train/lr", 1e-3)]).unwrap();
    let path = writer.path().to_path_buf();
    drop(writer);
    let events = clip_train::tensorboard::read_events(&path).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!((events[1].step, events[1].scalars.clone()), (3, vec![("train/loss".to_owned(), 2.5), ("train/lr".to_owned(), 1e-3f32)]));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 8] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = clip_train::tensorboard::read_events(&path).unwrap_err().to_string();
    assert!(err.contains("data CRC mismatch"), "{err}");
    // A torn last record (a crash mid-write) is left out, not an error.
    std::fs::write(&path, &bytes[..n - 3]).unwrap();
    assert_eq!(clip_train::tensorboard::read_events(&path).unwrap().len(), 1);
}

/// The unmasked CRC of `bytes`, recovered from the masked one (TFRecord's mask inverted).
fn crc_check(bytes: &[u8]) -> u32 {
    clip_train::tensorboard::masked_crc(bytes).wrapping_sub(0xa282_ead8).rotate_left(15)
}

#[test]
#[allow(clippy::print_stderr)] // reports the measured difference (quoted in the issue notes)
fn two_ranks_of_b_equal_one_rank_of_2b() {
    let worst = equal_runs(&[], Split::Ranks);
    eprintln!("largest weight difference after 8 steps: {worst:e}");
}

#[test]
#[allow(clippy::print_stderr)] // reports the measured difference (quoted in the issue notes)
fn siglip_trains_with_a_learnable_bias_and_two_ranks_agree() {
    let worst = equal_runs(&["--set", "loss.kind=siglip"], Split::Ranks);
    eprintln!("SigLIP: largest weight difference after 8 steps: {worst:e}");
}

#[test]
#[allow(clippy::print_stderr)] // reports the measured difference (quoted in the issue notes)
fn a_siglip_shaped_model_trains_on_its_own_tokenizer_and_two_ranks_agree() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup_model(dir.path(), &siglip_micro(), "[loss]\nkind = \"siglip\"\n");
    check(train(&config, &["--set", "optim.lr=1e-3"]));
    let run = dir.path().join("run");
    let logged = losses(&run);
    assert_eq!(logged.len(), 32);
    let mean = |part: &[(u64, f64)]| part.iter().map(|x| x.1).sum::<f64>() / part.len() as f64;
    let (first, last) = (mean(&logged[..8]), mean(&logged[24..]));
    assert!(last < 0.9 * first, "the loss did not fall: {first} over the first 8 steps, {last} over the last 8");
    let model_json = std::fs::read_to_string(run.join("model.json")).unwrap();
    assert!(model_json.contains("unigram-spm") && model_json.contains("\"no_causal_mask\":true"), "{model_json}");
    // Evaluation ran through the same tokenizer.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"top1\""), "no evaluation logged");
    let worst = equal_runs_of(&siglip_micro(), &["--set", "loss.kind=siglip"], Split::Ranks);
    eprintln!("SigLIP-shaped model: largest weight difference after 8 steps: {worst:e} (losses {first:.4} -> {last:.4})");
}

#[test]
#[allow(clippy::print_stderr)] // reports the measured difference (quoted in the issue notes)
fn two_accumulated_batches_of_b_equal_one_of_2b() {
    let worst = equal_runs(&[], Split::Accumulate);
    eprintln!("accumulation: largest weight difference after 8 steps: {worst:e}");
    let worst = equal_runs(&["--set", "loss.kind=siglip"], Split::Accumulate);
    eprintln!("accumulation, SigLIP: largest weight difference after 8 steps: {worst:e}");
}

/// How the second run splits the batch of 16.
enum Split {
    /// Two ranks of 8.
    Ranks,
    /// Two accumulated loader batches of 8 per step (`optim.accum_freq = 2`).
    Accumulate,
}

/// One rank at batch 16, and the same 16 samples per step split as `split` says, same seed and
/// data: per-step losses within 1e-5 and weights within 1e-5. Returns the largest weight difference.
fn equal_runs(extra: &[&str], split: Split) -> f64 {
    equal_runs_of(MICRO, extra, split)
}

/// [`equal_runs`] of model config `model`.
fn equal_runs_of(model: &str, extra: &[&str], split: Split) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    // Adam divides by the root of the second moment: where a gradient is nearly zero, float
    // rounding of the reduction order (one process vs an all-reduce) moves an update by up to the
    // learning rate (measured: 9.1e-6 at 1e-4 after 8 steps); 5e-5 keeps a margin under 1e-5.
    let mut common = vec!["--set", "optim.epochs=1", "--set", "optim.lr=5e-5"];
    common.extend(extra);
    let one_config = setup_model(&one, model, "");
    let mut args = vec!["--set", "data.batch_size=16"];
    args.extend(&common);
    check(train(&one_config, &args));
    let two_config = setup_model(&two, model, "");
    let mut args = match split {
        Split::Ranks => vec!["launch", "--nproc", "2", "--", "train", "--config", two_config.to_str().unwrap(), "--set", "data.batch_size=8"],
        Split::Accumulate => {
            vec!["train", "--config", two_config.to_str().unwrap(), "--set", "data.batch_size=8", "--set", "optim.accum_freq=2"]
        }
    };
    args.extend(&common);
    check(clip(&args).output().unwrap());
    let (a, b) = (losses(&one.join("run")), losses(&two.join("run")));
    assert_eq!(a.len(), 8);
    assert_eq!(b.len(), 8);
    for ((step, x), (_, y)) in a.iter().zip(&b) {
        assert!(x.is_finite() && (x - y).abs() < 1e-5, "step {step}: {x} vs {y}");
    }
    let (wa, wb) = (final_weights(&one.join("run")), final_weights(&two.join("run")));
    assert_eq!(wa.len(), wb.len());
    let mut worst = 0f64;
    for ((name, x), (_, y)) in wa.iter().zip(&wb) {
        let diff = (x - y).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: {diff}");
        worst = worst.max(diff);
    }
    if extra.contains(&"loss.kind=siglip") {
        let bias = wa.iter().find(|(n, _)| n == "logit_bias").expect("a SigLIP model has logit_bias");
        let value = bias.1.double_value(&[]);
        assert!(value != -10.0 && (value + 10.0).abs() < 0.1, "bias {value}");
        let model_json = std::fs::read_to_string(one.join("run/model.json")).unwrap();
        assert!(model_json.contains("\"init_logit_bias\":-10"), "{model_json}");
    }
    worst
}

#[test]
fn fine_tuning_from_weights_and_a_locked_image_tower() {
    // The `tiny` preset at batch 32 (at 16 it stays on the uniform-loss plateau for a test's few
    // dozen steps; so does the micro model).
    let dir = tempfile::tempdir().unwrap();
    let tiny = clip_model::ClipConfig::named("tiny").unwrap().to_json();
    let (base, tune, lock) = (dir.path().join("base"), dir.path().join("tune"), dir.path().join("lock"));
    for d in [&base, &tune, &lock] {
        std::fs::create_dir_all(d).unwrap();
    }
    let small = ["--set", "data.batch_size=32", "--set", "data.samples_per_epoch=256"];
    let mut args = vec!["--set", "optim.epochs=4", "--set", "optim.warmup=4"];
    args.extend(small);
    let base_config = setup(&base, "");
    std::fs::write(base.join("micro.json"), &tiny).unwrap();
    check(train(&base_config, &args));
    let start = last_checkpoint(&base.join("run")).join("model.safetensors");
    let start_weights = format!("model.weights={}", start.display());

    // Unlocked: from the base weights, the loss falls.
    let config = setup(&tune, "");
    std::fs::write(tune.join("micro.json"), &tiny).unwrap();
    let mut args = vec!["--set", &start_weights, "--set", "optim.epochs=6", "--set", "optim.warmup=4"];
    args.extend(small);
    check(train(&config, &args));
    let losses = losses(&tune.join("run"));
    let mean = |s: &[(u64, f64)]| s.iter().map(|x| x.1).sum::<f64>() / s.len() as f64;
    let (first, last) = (mean(&losses[..8]), mean(&losses[losses.len() - 8..]));
    assert!(last < first - 0.1, "loss should fall: first steps {first:.4}, last steps {last:.4}");

    // Locked: the image tower's weights stay exactly as loaded, the rest moves.
    let config = setup(&lock, "");
    std::fs::write(lock.join("micro.json"), &tiny).unwrap();
    let mut args = vec!["--set", &start_weights, "--set", "model.lock_image=true", "--set", "optim.epochs=1"];
    args.extend(small);
    check(train(&config, &args));
    let (before, after) = (weights(&start), final_weights(&lock.join("run")));
    let (mut frozen, mut moved) = (0, 0);
    for ((name, x), (_, y)) in before.iter().zip(&after) {
        if name.starts_with("visual.") {
            assert!(x.equal(y), "{name} changed with the image tower locked");
            frozen += 1;
        } else if !x.equal(y) {
            moved += 1;
        }
    }
    assert!(frozen > 5 && moved > 5, "{frozen} frozen, {moved} moved");
}

/// The end-of-run line of a metrics log.
fn end_line(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn corrupt_samples_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let photo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../clip-data/tests/fixtures/images/rocket.jpg")).unwrap();
    let mut rows = String::from("filepath,title\n");
    for i in 0..160 {
        let name = format!("{i}.jpg");
        // One sample in twenty is damaged: 5 %.
        let bytes = if i % 20 == 7 { photo[..photo.len() / 3].to_vec() } else { photo.clone() };
        std::fs::write(dir.path().join(&name), bytes).unwrap();
        rows.push_str(&format!("{name},a rocket number {i}\n"));
    }
    std::fs::write(dir.path().join("pairs.csv"), rows).unwrap();
    let source = format!("data.source=csv:{}", dir.path().join("pairs.csv").display());
    let config = setup(dir.path(), "");
    let output = check(train(&config, &["--quiet", "--set", &source, "--set", "data.samples_per_epoch=0", "--set", "optim.epochs=1"]));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "--quiet: nothing on stderr");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["steps"], 20);
    let end = end_line(&dir.path().join("run"));
    // 8 bad files in the first epoch; the 20th step draws from the second, which may reach more.
    let corrupt = end["skipped_by_reason"]["corrupt_image"].as_u64().unwrap();
    assert!((8..=16).contains(&corrupt), "{end}");
    assert_eq!(end["skipped"].as_u64().unwrap(), corrupt);
}

#[test]
fn non_finite_steps_are_skipped_then_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), "[stability]\ninject_nonfinite = [3, 4]\n");
    check(train(&config, &["--set", "optim.epochs=1"]));
    let run = dir.path().join("run");
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).filter(|v: &serde_json::Value| v.get("loss").is_some()).collect();
    let skipped: Vec<u64> = steps.iter().filter(|v| v["skipped_step"] == true).map(|v| v["step"].as_u64().unwrap()).collect();
    assert_eq!(skipped, [3, 4]);
    assert_eq!(end_line(&run)["nonfinite_steps"], 2);

    // Three in a row with a limit of three: the run stops, and its last checkpoint is intact.
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), "[stability]\ninject_nonfinite = [10, 11, 12]\nmax_nonfinite = 3\n");
    let output = train(&config, &["--set", "optim.epochs=1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 consecutive steps") && stderr.contains("step 12"), "{stderr}");
    let last = last_checkpoint(&dir.path().join("run"));
    assert!(last.ends_with("step-00000008"), "{}", last.display());
    check(train(&config, &["--resume", "latest", "--set", "stability.inject_nonfinite=[]", "--set", "optim.epochs=1"]));
}

#[test]
fn a_full_disk_during_a_checkpoint_leaves_the_previous_one_loadable() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), "");
    check(train(&config, &["--set", "optim.epochs=1"]));
    let run = dir.path().join("run");
    let before = last_checkpoint(&run);
    let optimizer = std::fs::metadata(before.join("optimizer.safetensors")).unwrap().len();
    // Files may not grow past half the optimiser state: every later checkpoint fails mid-write,
    // as on a full disk (EFBIG instead of ENOSPC; SIGXFSZ ignored so the write returns an error).
    let limit = optimizer / 2;
    let mut command = clip(&["train", "--config", config.to_str().unwrap(), "--resume", "latest", "--set", "optim.epochs=2"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    assert!(!output.status.success(), "the final checkpoint cannot be written: {}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("checkpoint not written") && stderr.contains("previous one is intact"), "{stderr}");
    assert_eq!(last_checkpoint(&run), before);
    let leftovers: Vec<_> = std::fs::read_dir(run.join("checkpoints")).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The previous checkpoint loads: resuming from it without the limit finishes the run.
    check(train(&config, &["--resume", "latest", "--set", "optim.epochs=2"]));
    assert!(last_checkpoint(&run).ends_with("step-00000032"));
}

/// torchrun (from the torch wheel that provides libtorch) runs the same job as `clip launch`, to
/// the bit. As in the launch tests, a libtorch that is not a wheel has no torchrun to try.
#[test]
fn torchrun_and_clip_launch_train_alike() {
    let libtorch = PathBuf::from(std::env::var_os("LIBTORCH").expect("LIBTORCH is set (cargo xtask test sets it)"));
    if !libtorch.join("version.py").exists() {
        return;
    }
    let torchrun = libtorch.ancestors().nth(4).unwrap().join("bin/torchrun");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("launch"), dir.path().join("torchrun"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (config_a, config_b) = (setup(&a, ""), setup(&b, ""));
    let args = ["--set", "optim.epochs=1"];
    check(clip(&["launch", "--nproc", "2", "--", "train", "--config", config_a.to_str().unwrap(), args[0], args[1]]).output().unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    check(
        Command::new(&torchrun)
            .args(["--nproc-per-node", "2", "--master-port", &port, "--no-python", env!("CARGO_BIN_EXE_clip")])
            .args(["train", "--config", config_b.to_str().unwrap(), args[0], args[1]])
            .env("OMP_NUM_THREADS", "1")
            .output()
            .unwrap(),
    );
    assert_eq!(losses(&a.join("run")).len(), 8);
    assert_eq!(losses(&a.join("run")), losses(&b.join("run")));
    assert_final_weights_equal(&a.join("run"), &b.join("run"), "between torchrun and clip launch");
}

/// Patch dropout (`model.patch_dropout`): on (the losses differ from a run without), a killed run
/// resumes bit for bit (the kept patches come from the loader's per-sample streams), two ranks
/// and two accumulated batches equal one process at twice the batch, and a ModifiedResNet refuses it.
#[test]
#[allow(clippy::print_stderr)] // reports the measured difference
fn patch_dropout_resumes_bitwise_and_two_ranks_agree() {
    let on = ["--set", "model.patch_dropout=0.5"];
    let (dir, whole, plain) = with_and_without(&on);
    let killed = dir.path().join("killed");
    let (a, p) = (losses(&whole), losses(&plain));
    assert!(a.iter().zip(&p).skip(1).all(|(x, y)| x.1 != y.1), "patch dropout changed nothing");

    let config = setup(&killed, "");
    killed_run_resumes_as(&config, &on, &whole);

    let ranks = equal_runs(&on, Split::Ranks);
    let accumulated = equal_runs(&on, Split::Accumulate);
    eprintln!("patch dropout: largest weight difference after 8 steps: 2 ranks {ranks:e}, 2 accumulated batches {accumulated:e}");

    let refused = train(&config, &["--set", "model.config=\"\"", "--set", "model.preset=tiny", on[0], on[1]]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("model.patch_dropout: ") && stderr.contains("a ModifiedResNet has no patch tokens to drop"), "{stderr}");
    let refused = train(&config, &on.map(|s| s.replace("0.5", "1.5")).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("model.patch_dropout: must be in [0, 1), got 1.5"), "{:?}", refused);
}

/// Gradient checkpointing (`model.grad_checkpointing`): the losses and weights are those of the
/// run without it (to float rounding), and a killed run resumes bit for bit.
#[test]
#[allow(clippy::print_stderr)] // reports the measured difference
fn grad_checkpointing_trains_as_without_and_resumes_bitwise() {
    let on = ["--set", "model.grad_checkpointing=true"];
    let (dir, whole, plain) = with_and_without(&on);
    let killed = dir.path().join("killed");
    let (a, p) = (losses(&whole), losses(&plain));
    assert_eq!(a.len(), 32);
    let loss_d = a.iter().zip(&p).map(|(x, y)| (x.1 - y.1).abs() / y.1.abs()).fold(0.0, f64::max);
    let (wa, wp) = (final_weights(&whole), final_weights(&plain));
    let weight_d = wa.iter().zip(&wp).map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[])).fold(0.0, f64::max);
    eprintln!("grad checkpointing: after 32 steps, largest relative loss difference {loss_d:e}, largest weight difference {weight_d:e}");
    assert!(loss_d <= 1e-5 && weight_d <= 1e-5, "losses differ by {loss_d:e}, weights by {weight_d:e}");

    killed_run_resumes_as(&setup(&killed, ""), &on, &whole);
}

/// Gradient averaging overlapped with the backward pass (`dist.overlap`): 2 ranks with it end
/// with the weights of 2 ranks without, bit for bit, after 16 steps: small buckets (so that most
/// are averaged during the backward pass), two accumulated batches per step (the reducer armed for
/// the last, which leaves the logit scale out) and clipping after the average.
#[test]
fn overlapped_gradient_averaging_equals_the_plain_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let runs = ["plain", "overlap"].map(|name| dir.path().join(name));
    for (folder, overlap) in runs.iter().zip(["false", "true"]) {
        std::fs::create_dir_all(folder).unwrap();
        let config = setup(folder, "[dist]\nbucket_mb = 0.05\n");
        let overlap = format!("dist.overlap={overlap}");
        let sets = ["--set", &overlap, "--set", "optim.accum_freq=2", "--set", "data.batch_size=4", "--set", "optim.grad_clip=1.0"];
        let mut args = vec!["launch", "--nproc", "2", "--", "train", "--config", config.to_str().unwrap()];
        args.extend(sets);
        check(clip(&args).output().unwrap());
    }
    let (a, b) = (runs[0].join("run"), runs[1].join("run"));
    assert_eq!(losses(&a).len(), 16);
    assert_eq!(loss_bits(&a), loss_bits(&b));
    assert!(last_checkpoint(&b).ends_with("step-00000016"));
    assert_final_weights_equal(&a, &b, "with overlap");
    // Each step logs the communication the backward pass left exposed.
    let text = std::fs::read_to_string(runs[1].join("run/metrics.jsonl")).unwrap();
    let lines = text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    let exposed: Vec<f64> = lines.filter_map(|v| v["exposed_comm_s"].as_f64()).collect();
    assert!(exposed.len() == 16 && exposed.iter().all(|&s| s > 0.0 && s < 60.0), "{exposed:?}");
}

/// With overlap on, a rank SIGKILLed mid-run ends the other with an error naming it, within the
/// collective timeout. The ranks are started by hand: `clip launch` would stop the survivor itself.
#[test]
fn a_rank_killed_mid_run_with_overlap_is_named_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), "[dist]\noverlap = true\nbucket_mb = 0.05\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let timeout = 20;
    let rank = |rank: &str| {
        clip(&["train", "--config", config.to_str().unwrap(), "--set", "optim.epochs=100", "--set", "checkpoint.every=0"])
            .envs([("WORLD_SIZE", "2"), ("RANK", rank), ("LOCAL_RANK", rank), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", &port)])
            .env("CLIP_DIST_TIMEOUT", timeout.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (mut survivor, mut victim) = (rank("0"), rank("1"));
    let start = Instant::now();
    while !dir.path().join("run/metrics.jsonl").exists() || losses(&dir.path().join("run")).len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(120), "no steps were logged");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: plain signal to our own child.
    unsafe { libc::kill(victim.id() as i32, libc::SIGKILL) };
    let killed_at = Instant::now();
    victim.wait().unwrap();
    let status = survivor.wait().unwrap();
    let elapsed = killed_at.elapsed();
    let stderr = std::io::read_to_string(survivor.stderr.take().unwrap()).unwrap();
    assert!(!status.success(), "rank 0 went on without rank 1: {stderr}");
    assert!(losses(&dir.path().join("run")).len() < 800, "rank 0 finished the run");
    assert!(elapsed < Duration::from_secs(timeout + 15), "rank 0 took {elapsed:?} to fail: {stderr}");
    assert!(stderr.contains("ranks whose heartbeat stopped (dead): [1]"), "{stderr}");
}

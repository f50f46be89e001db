use std::path::{Path, PathBuf};
use std::process::Command;

use clip_data::PreprocessConfig;
use clip_data::source::{Indexed, Payload, open_native};
use clip_eval::registry::find;
use clip_eval::zeroshot::{classifier, predict};
use clip_tensor::safetensors::read_safetensors;
use tch::{Device, Tensor};

use crate::support::{self, Setup};

/// A tiny ViT with the real vocabulary (prompts are real text).
const CONFIG: &str = r#"{"embed_dim": 16,
  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}"#;

fn setup(name: &str) -> Setup {
    support::setup(&format!("clip-bench-{name}"), CONFIG, 5)
}

/// CIFAR-10 binary batches under `root/cifar10`: images of labels 0–3 whose colour depends on the
/// label (plus noise), `train` per training batch file and `test` in the test batch.
fn cifar10(root: &Path, train: usize, test: usize) {
    let dir = root.join("cifar10/cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let names: String = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"].map(|n| format!("{n}\n")).concat();
    std::fs::write(dir.join("batches.meta.txt"), names).unwrap();
    let mut state = 12345u32;
    let mut noise = move || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (state >> 24) as u8 / 4
    };
    let mut records = |count: usize, offset: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..count {
            let label = ((i + offset) % 4) as u8;
            out.push(label);
            for c in 0..3u8 {
                let base = if c == label % 3 { 180 } else { 40 } + if label == 3 { 60 } else { 0 };
                out.extend((0..1024).map(|_| (base as u8).saturating_add(noise())));
            }
        }
        out
    };
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), records(train, b)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), records(test, 0)).unwrap();
}

fn bench(s: &Setup, command: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clip"))
        .arg(command)
        .arg("--model-config")
        .arg(&s.config)
        .arg("--weights")
        .arg(&s.weights)
        .args(["--device", "cpu", "--threads", "1", "--batch-size", "7"])
        .args(args)
        // Registry sets not under the data root would be fetched from the hub: tests stay offline.
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

fn results(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

#[test]
fn zeroshot_over_registry_builtin_and_custom_sets() {
    let s = setup("zeroshot");
    let root = s.dir.join("data");
    cifar10(&root, 2, 23);
    // A custom ImageFolder with its own class names and template.
    let custom = s.dir.join("my_set");
    for (class, colour) in [("a", [200u8, 30, 30]), ("b", [30, 30, 200])] {
        std::fs::create_dir_all(custom.join(class)).unwrap();
        for i in 0..3u8 {
            let image = image::RgbImage::from_pixel(20 + u32::from(i), 24, image::Rgb(colour));
            image.save(custom.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(custom.join("classnames.txt"), "red square\nblue square\n").unwrap();
    std::fs::write(custom.join("zeroshot_classification_templates.txt"), "a photo of a {c}.\n").unwrap();
    let out = s.dir.join("out");
    let datasets = format!("cifar10,builtin/colour,{},food101,no-such-set", custom.display());
    let run = bench(&s, "bench-zeroshot", &["--data-root", root.to_str().unwrap(), "--datasets", &datasets, "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = results(&out);
    let by_name = |n: &str| report["results"].as_array().unwrap().iter().find(|r| r["name"] == n).unwrap().clone();
    assert_eq!(report["missing"], serde_json::json!(["food101", "no-such-set"]));
    // Progress off a terminal: a closing line per pass, no bar; results.png: three bars of ours.
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains('\r') && stderr.contains("clip bench-zeroshot: cifar10 test: 23/23 images in "), "{stderr}");
    let chart = image::open(out.join("results.png")).unwrap().to_rgb8();
    assert_eq!(chart.dimensions(), (1100, 240 + 64 * 3));
    let ours = chart.pixels().filter(|p| p.0 == [31, 119, 180]).count();
    assert!(ours > 3000, "our bars: {ours} pixels");

    // CIFAR-10 read natively, scored with the paper's 10 class names and 18 templates: the same
    // top-1 as classifying each image through the library by hand.
    let cifar = by_name("cifar10");
    assert_eq!((cifar["samples"].as_u64(), cifar["format"].as_str(), cifar["metric"].as_str()), (Some(23), Some("native"), Some("accuracy")));
    let info = find("cifar10").unwrap();
    let w = classifier(&s.model, &clip_tokenizer::TextTokenizer::OpenAi, &info.classes, &info.templates, Device::Cpu).unwrap();
    let (source, _) = open_native(&root.join("cifar10"), "test").unwrap().unwrap();
    let preprocess = PreprocessConfig::openai(32);
    let mut correct = 0;
    for i in 0..source.len() {
        let record = source.record(0, i);
        let (Payload::Image(image), clip_data::source::Text::Label(label)) = (record.payload, record.text) else { panic!() };
        let pixels = Tensor::from_slice(&preprocess.apply(&image)).view([1, 3, 32, 32]);
        let _guard = tch::no_grad_guard();
        correct += i64::from(predict(&s.model, &w, &pixels).int64_value(&[0]) == label);
    }
    let expected = 100.0 * correct as f64 / 23.0;
    assert!((cifar["acc1"].as_f64().unwrap() - expected).abs() < 1e-9, "{cifar} vs {expected}");
    assert!(cifar["acc5"].as_f64().unwrap() >= cifar["acc1"].as_f64().unwrap());

    let colour = by_name("builtin/colour");
    assert_eq!(colour["samples"].as_u64(), Some(1000));
    let mine = by_name("my_set");
    assert_eq!((mine["samples"].as_u64(), mine["format"].as_str(), mine["acc5"].is_null()), (Some(6), Some("imagefolder"), true));

    let markdown = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(markdown.contains("| cifar10 | zeroshot_classification | accuracy |"), "{markdown}");
    assert!(markdown.contains("Not found under the data root: food101, no-such-set"), "{markdown}");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");

    // Classifiers are cached per weights and set: a planted all-zero classifier is used as is
    // (every score ties, argmax takes class 0: recall 1 for class 0, 0 for the other three), and
    // changed templates rebuild.
    let cached: Vec<PathBuf> = std::fs::read_dir(out.join("classifiers")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cached.len(), 3, "{cached:?}");
    let planted = cached.iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("cifar10-")).unwrap();
    clip_tensor::safetensors::save_safetensors(planted, &[("classifier", &Tensor::zeros([16, 10], (tch::Kind::Float, Device::Cpu)))]).unwrap();
    std::fs::write(custom.join("zeroshot_classification_templates.txt"), "a {c}.\n").unwrap();
    let datasets = format!("cifar10,{}", custom.display());
    let run = bench(&s, "bench-zeroshot", &["--quiet", "--data-root", root.to_str().unwrap(), "--datasets", &datasets, "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(String::from_utf8_lossy(&run.stderr), "", "--quiet: nothing on stderr");
    assert!(String::from_utf8_lossy(&run.stdout).contains("| cifar10 | zeroshot_classification |"), "the results are still printed");
    assert_eq!(results(&out)["results"][0]["mean_per_class_recall"].as_f64(), Some(25.0));
    assert_eq!(std::fs::read_dir(out.join("classifiers")).unwrap().count(), 4);
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn linear_probe_with_holdout_few_shot_and_saved_features() {
    let s = setup("probe");
    let root = s.dir.join("data");
    cifar10(&root, 8, 24);
    let (out, features) = (s.dir.join("out"), s.dir.join("features"));
    let run = bench(
        &s,
        "bench-linear-probe",
        &[
            "--data-root",
            root.to_str().unwrap(),
            "--datasets",
            "cifar10",
            "--few-shot",
            "1,2",
            "--seeds",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--save-features",
            features.to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = results(&out);
    let probe = &report["results"][0];
    assert_eq!((probe["task"].as_str(), probe["samples"].as_u64()), (Some("linear_probe"), Some(24)));
    let details = &probe["probe"];
    assert_eq!((details["train_samples"].as_u64(), details["validation_samples"].as_u64()), (Some(32), Some(8)));
    assert!(details["validation"].as_str().unwrap().contains("20% of train"));
    let trials = details["trials"].as_array().unwrap();
    assert!(trials.len() >= 7 && trials[0]["lambda"] == details["lambda"], "{details}");
    let shots = details["few_shot"].as_array().unwrap();
    assert_eq!(shots.iter().map(|f| (f["k"].as_u64().unwrap(), f["values"].as_array().unwrap().len())).collect::<Vec<_>>(), [(1, 2), (2, 2)]);
    assert!(details["zeroshot"].as_f64().is_some(), "zero-shot beside the few-shot probes: {details}");
    let markdown = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(markdown.contains("cifar10 few-shot linear probe (accuracy): k=1: ") && markdown.contains("zero-shot"), "{markdown}");
    // Colour tells the four classes apart: the probe on random-weight features still learns it.
    assert!(probe["acc1"].as_f64().unwrap() >= 75.0, "{probe}");
    // The saved features: the ViT's width (32) before the projection, as many rows as samples.
    let saved = read_safetensors(&features.join("cifar10.safetensors")).unwrap();
    let shape = |n: &str| saved.iter().find(|(k, _)| k == n).unwrap().1.size();
    assert_eq!((shape("train_x"), shape("validation_y"), shape("test_x")), (vec![32, 32], vec![8], vec![24, 32]));
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn without_a_model_or_checkpoint_it_says_how_to_make_one() {
    let s = setup("nomodel");
    let run = Command::new(env!("CARGO_BIN_EXE_clip"))
        .args(["bench-zeroshot", "--runs", s.dir.join("runs").to_str().unwrap(), "--device", "cpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && stderr.contains("cargo xtask train"), "{stderr}");
    let _ = std::fs::remove_dir_all(&s.dir);
}

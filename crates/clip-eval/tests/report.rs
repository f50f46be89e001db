use std::path::PathBuf;
use std::process::Command;

use clip_eval::metrics::ClassificationScores;
use clip_eval::report::{DatasetResult, ProbeDetails, Report, clip_benchmark_dataset};
use clip_eval::retrieval::RetrievalScores;

fn read_as(mut r: DatasetResult, format: &str) -> DatasetResult {
    r.format = format.into();
    r
}

fn scores(acc1: f64, acc5: Option<f64>, mean_per_class_recall: f64, value: f64) -> ClassificationScores {
    ClassificationScores { acc1, acc5, mean_per_class_recall, value }
}

/// One result of each kind, with fractions that survive percent and back exactly (few binary
/// digits), so that the expected JSON can be spelt out.
fn report() -> Report {
    let zeroshot = "zeroshot_classification";
    let mut pets = read_as(
        DatasetResult::new("pets".into(), "linear_probe", "mean_per_class_recall", &scores(0.875, Some(0.984375), 0.859375, 0.859375), 3669),
        "imagefolder",
    );
    pets.probe = Some(ProbeDetails {
        lambda: 1e-5,
        c: 1e5,
        validation: "20% of train, held out by seed 0".into(),
        train_samples: 2944,
        validation_samples: 736,
        search_seconds: 1.5,
        trials: Vec::new(),
        few_shot: Vec::new(),
        zeroshot: None,
    });
    let coco = RetrievalScores {
        images: 5000,
        texts: 25000,
        image_recall: vec![(1, 0.25), (5, 0.5), (10, 0.625)],
        text_recall: vec![(1, 0.375), (5, 0.625), (10, 0.75)],
        skipped: Default::default(),
    };
    Report {
        model: "ViT-B-32".into(),
        weights: "ViT-B-32.pt".into(),
        results: vec![
            read_as(DatasetResult::new("cifar10".into(), zeroshot, "accuracy", &scores(0.875, Some(0.96875), 0.8125, 0.875), 10000), "clip_benchmark_wds"),
            read_as(DatasetResult::new("kitti".into(), zeroshot, "accuracy", &scores(0.25, None, 0.375, 0.25), 711), "imagefolder"),
            read_as(DatasetResult::new("hateful_memes".into(), zeroshot, "roc_auc", &scores(0.5, None, 0.5, 0.625), 500), "native"),
            read_as(DatasetResult::multilabel("voc2007".into(), 0.84375, 0.8125, 4952), "clip_benchmark_wds"),
            DatasetResult::retrieval("mscoco_captions".into(), &coco),
            pets,
        ],
        missing: vec!["birdsnap".into()],
        failed: Vec::new(),
    }
}

/// (file name, dataset key, metrics JSON) of each result of [`report`] for ViT-B-32 / openai.
const EXPECTED: [(&str, &str, &str); 6] = [
    (
        "vtab_cifar10_openai_ViT-B-32_en_zeroshot_classification.json",
        "wds/vtab/cifar10",
        r#"{"acc1": 0.875, "acc5": 0.96875, "mean_per_class_recall": 0.8125}"#,
    ),
    (
        "vtab_kitti_closest_vehicle_distance_openai_ViT-B-32_en_zeroshot_classification.json",
        "vtab/kitti_closest_vehicle_distance",
        r#"{"acc1": 0.25, "acc5": NaN, "mean_per_class_recall": 0.375}"#,
    ),
    (
        "hateful_memes_openai_ViT-B-32_en_zeroshot_classification.json",
        "hateful_memes",
        r#"{"acc1": 0.5, "acc5": NaN, "mean_per_class_recall": 0.5, "roc_auc": 0.625}"#,
    ),
    (
        "voc2007_multilabel_openai_ViT-B-32_en_zeroshot_classification.json",
        "wds/voc2007_multilabel",
        r#"{"mean_average_precision": 0.8125, "map_11point": 0.84375}"#,
    ),
    (
        "mscoco_captions_openai_ViT-B-32_en_zeroshot_retrieval.json",
        "mscoco_captions",
        concat!(
            r#"{"image_retrieval_recall@1": 0.25, "text_retrieval_recall@1": 0.375, "image_retrieval_recall@5": 0.5, "#,
            r#""text_retrieval_recall@5": 0.625, "image_retrieval_recall@10": 0.625, "text_retrieval_recall@10": 0.75}"#
        ),
    ),
    (
        "pets_openai_ViT-B-32_en_linear_probe.json",
        "pets",
        concat!(
            r#"{"lp_acc1": 0.875, "lp_acc5": 0.984375, "lp_mean_per_class_recall": 0.859375, "#,
            r#""fewshot_k": -1, "seed": 0, "normalized": false, "lambda": 1e-05, "C": 100000.0}"#
        ),
    ),
];

#[test]
fn clip_benchmark_file_names_and_json() {
    let report = report();
    let files = report.clip_benchmark_files("ViT-B-32", "openai");
    assert_eq!(files.len(), EXPECTED.len());
    for ((name, json), (expected_name, dataset, metrics)) in files.iter().zip(EXPECTED) {
        assert_eq!(name, expected_name);
        let task = &name[name.find("_en_").unwrap() + 4..name.len() - 5];
        let expected = format!(
            r#"{{"dataset": "{dataset}", "model": "ViT-B-32", "pretrained": "openai", "task": "{task}", "metrics": {metrics}, "language": "en"}}"#
        );
        assert_eq!(*json, expected);
        // Valid JSON once the bare NaN (which Python reads, serde_json does not) is replaced.
        let parsed: serde_json::Value = serde_json::from_str(&json.replace("NaN", "null")).unwrap();
        assert_eq!(parsed["task"], task);
    }
    assert_eq!(report.results.iter().map(clip_benchmark_dataset).collect::<Vec<_>>(), EXPECTED.map(|e| e.1));
}

#[test]
fn clip_benchmark_names_of_weights_files_and_other_layouts() {
    let mut report = report();
    report.results.truncate(1);
    // A weights path: its base name in the file name (CLIP_benchmark's basename), all of it in
    // the JSON; a model name with a slash stays one file; non-ASCII escaped as Python does.
    let files = report.clip_benchmark_files("hf-hub:org/Modèle", "/runs/a b/epoch_32.pt");
    assert_eq!(files[0].0, "vtab_cifar10_epoch_32.pt_hf-hub:org_Modèle_en_zeroshot_classification.json");
    assert!(files[0].1.contains(r#""model": "hf-hub:org/Mod\u00e8le", "pretrained": "/runs/a b/epoch_32.pt""#), "{}", files[0].1);
    // Read from the original files rather than the hub copy: the builder's own name.
    report.results[0].format = "native".into();
    assert_eq!(clip_benchmark_dataset(&report.results[0]), "cifar10");
    assert!(report.clip_benchmark_files("RN50", "openai")[0].1.starts_with(r#"{"dataset": "cifar10", "#));
    // A hub snapshot of a registry set's repo, evaluated as a folder: the same name.
    report.results[0].name = "clip-benchmark/wds_vtab-cifar10".into();
    assert_eq!(clip_benchmark_dataset(&report.results[0]), "wds/vtab/cifar10");
    // Not a registry set: our name.
    report.results[0].name = "builtin/shape".into();
    assert_eq!(report.clip_benchmark_files("RN50", "openai")[0].0, "builtin_shape_openai_RN50_en_zeroshot_classification.json");
}

/// The venv's Python (`CLIP_PYTHON` overrides), if it can import clip_benchmark.
fn clip_benchmark_python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var_os("CLIP_PYTHON").map_or_else(|| root.join(".venv/bin/python"), PathBuf::from);
    let status = Command::new(&python).args(["-c", "import clip_benchmark.cli"]).output().ok()?.status;
    status.success().then_some(python)
}

#[test]
#[allow(clippy::print_stderr)] // says when the Python half is skipped
fn clip_benchmark_build_merges_our_files_with_its_own() {
    let files = report().clip_benchmark_files("ViT-B-32", "openai");
    assert!(files.iter().all(|(name, _)| !name.contains('/')));
    let Some(python) = clip_benchmark_python() else {
        eprintln!("clip_benchmark not importable: `clip_benchmark build` not run");
        return;
    };
    let dir = std::env::temp_dir().join(format!("clip-eval-cb-build-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, json) in &files {
        std::fs::write(dir.join(name), json).unwrap();
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/check_clip_benchmark_build.py");
    let out = Command::new(&python).arg(&script).arg(&dir).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = merged["rows"].as_array().unwrap();
    assert_eq!(rows.len(), files.len() + 1);
    let row = |dataset: &str| rows.iter().find(|r| r["dataset"] == dataset).unwrap_or_else(|| panic!("no row for {dataset}"));
    let column = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or_else(|| panic!("no column {k}")).to_owned();
    // Every metric of every file is its own column; a row leaves the others empty.
    for (_, dataset, metrics) in EXPECTED {
        let r = row(dataset);
        assert_eq!(column(r, "model_fullname"), "ViT-B-32 openai");
        let metrics: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&metrics.replace("NaN", "null")).unwrap();
        for (key, value) in &metrics {
            let cell = column(r, key);
            match value {
                serde_json::Value::Null => assert_eq!(cell, "nan", "{dataset} {key}"),
                serde_json::Value::Bool(b) => assert_eq!(cell, if *b { "True" } else { "False" }, "{dataset} {key}"),
                v => assert_eq!(cell.parse::<f64>().unwrap(), v.as_f64().unwrap(), "{dataset} {key}"),
            }
        }
        assert_eq!(column(r, "language"), "en");
    }
    assert_eq!(column(row("wds/vtab/cifar10"), "mean_average_precision"), "");
    assert_eq!(column(row("vtab/kitti_closest_vehicle_distance"), "task"), "zeroshot_classification");
    assert_eq!(column(row("pets"), "task"), "linear_probe");
    // CLIP_benchmark's own file, side by side.
    let genuine = row("dummy");
    assert_eq!((column(genuine, "model_fullname"), column(genuine, "acc5")), ("ViT-S-32 ".to_owned(), "nan".to_owned()));
}

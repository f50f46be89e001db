//! The robustness study's sets in the registry, against CLIP_benchmark 1.6.2
//! (`scripts/gen_imagenet_subsets.py`), and the run summary.

use clip_eval::registry::{ROBUSTNESS, datasets, find};
use clip_eval::report::{DatasetResult, Report};
use clip_eval::robustness::Robustness;

fn subsets() -> serde_json::Value {
    serde_json::from_str(include_str!("fixtures/imagenet_subsets.json")).unwrap()
}

#[test]
fn the_five_shifted_sets_follow_imagenet_in_the_registry() {
    let shifted: Vec<&str> = datasets().iter().filter(|d| d.robustness).map(|d| d.name.as_str()).collect();
    assert_eq!(shifted, ROBUSTNESS[1..]);
    assert_eq!(ROBUSTNESS[0], "imagenet1k");
    let imagenet = find("imagenet1k").unwrap();
    for name in &ROBUSTNESS[1..] {
        let d = find(name).unwrap();
        assert_eq!(d.hub_repo.as_deref(), Some(format!("clip-benchmark/wds_{name}").as_str()));
        assert_eq!(d.wds_name(), Some(format!("wds/{name}")));
        // ImageNet's 80-template ensemble, as CLIP_benchmark uses for every ImageNet variant.
        assert_eq!(d.templates, imagenet.templates, "{name}");
        assert!(d.paper_note.is_some() && d.paper_value("ViT-L/14@336px").is_some(), "{name}");
    }
    for name in ["imagenetv2", "imagenet_sketch"] {
        let d = find(name).unwrap();
        assert_eq!(d.classes, imagenet.classes, "{name}");
        assert!(d.imagenet_classes.is_empty());
    }
}

/// `scripts/gen_objectnet.py`: what CLIP_benchmark's builder gives when run on ObjectNet's folders
/// and mapping files.
#[test]
fn objectnet_classes_folders_and_imagenet_mapping_are_clip_benchmarks() {
    let f: serde_json::Value = serde_json::from_str(include_str!("fixtures/objectnet.json")).unwrap();
    let strings = |v: &serde_json::Value| -> Vec<String> { v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect() };
    let objectnet = find("objectnet").unwrap();
    assert_eq!(objectnet.classnames(), strings(&f["classnames"]));
    assert_eq!(objectnet.classes.len(), 113);
    assert_eq!(objectnet.data_folders, strings(&f["folders"]));
    let mapping: Vec<Vec<usize>> = f["imagenet"].as_array().unwrap().iter().map(|c| c.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect()).collect();
    assert_eq!(objectnet.imagenet_mapping, mapping);
    // The 1000-way mask CLIP_benchmark derives is the union of the mapping: 125 ImageNet classes.
    let mut union: Vec<usize> = mapping.concat();
    union.sort_unstable();
    union.dedup();
    let mask: Vec<usize> = f["mask_indices"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect();
    assert_eq!((union.len(), &union), (125, &mask));
    assert_eq!(f["images_kept"].as_u64(), Some(113), "one image per kept folder of the scratch tree");
    assert!(objectnet.imagenet_classes.is_empty());
    assert!(datasets().iter().filter(|d| d.name != "objectnet").all(|d| d.imagenet_mapping.is_empty() && d.data_folders.is_empty()));
}

#[test]
fn imagenet_r_and_a_masks_are_clip_benchmarks() {
    let f = subsets();
    let imagenet = find("imagenet1k").unwrap();
    let wnids: Vec<&str> = f["imagenet_wnids"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(wnids.len(), 1000);
    for name in ["imagenet-r", "imagenet-a"] {
        let d = find(name).unwrap();
        let indices: Vec<usize> = f[name]["indices"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect();
        assert_eq!(d.imagenet_classes, indices, "{name}");
        let names: Vec<String> = f[name]["classnames"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        assert_eq!(d.classnames(), names, "{name}");
        // Each kept class is ImageNet's class of that index.
        for (&i, c) in d.imagenet_classes.iter().zip(&d.classes) {
            assert_eq!(c, &imagenet.classes[i], "{name} {}", wnids[i]);
        }
    }
    // The two subsets differ (ImageNet-A keeps classes ImageNet-R lacks).
    assert_ne!(find("imagenet-r").unwrap().imagenet_classes, find("imagenet-a").unwrap().imagenet_classes);
}

fn zeroshot(name: &str, acc1: f64) -> DatasetResult {
    let scores = clip_eval::metrics::ClassificationScores { acc1, acc5: None, mean_per_class_recall: acc1, value: acc1 };
    DatasetResult::new(name.into(), "zeroshot_classification", "accuracy", &scores, 10)
}

#[test]
fn the_summary_averages_the_shifted_sets_against_imagenet() {
    let results = vec![zeroshot("imagenet1k", 0.75), zeroshot("imagenetv2", 0.70), zeroshot("imagenet-r", 0.90), zeroshot("cifar10", 0.1)];
    let r = Robustness::of(&results).unwrap();
    assert_eq!(r.shifted, [("imagenetv2".to_owned(), 70.0), ("imagenet-r".to_owned(), 90.0)]);
    assert!((r.average_shifted - 80.0).abs() < 1e-9 && (r.gap - 5.0).abs() < 1e-9, "{r:?}");
    assert_eq!(r.missing, ["imagenet_sketch", "imagenet-a", "objectnet"]);
    let report = Report { model: "m".into(), weights: "w".into(), results: results.clone(), missing: vec![], failed: vec![] };
    let json: serde_json::Value = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(json["robustness"]["gap"].as_f64().map(|g| (g * 1e6).round() / 1e6), Some(5.0));
    assert!(report.markdown().contains("average over 2 shifted sets 80.0, gap to ImageNet +5.0 points"), "{}", report.markdown());
    // Without ImageNet, or without a shifted set, there is no summary.
    assert!(Robustness::of(&results[1..]).is_none());
    assert!(Robustness::of(&[zeroshot("imagenet1k", 0.75)]).is_none());
    let plain = Report { results: vec![zeroshot("cifar10", 0.5)], ..report };
    assert!(serde_json::to_value(&plain).unwrap().get("robustness").is_none());
}

/// ObjectNet as shipped: only the registry's 113 class folders are read, labelled in its order.
#[test]
fn objectnet_as_shipped_reads_its_mapped_folders_only() {
    use clip_data::source::{Payload, Text};
    use clip_eval::suite::{Target, open_split};
    let dir = std::env::temp_dir().join(format!("clip-eval-objectnet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let objectnet = find("objectnet").unwrap();
    let images = dir.join("objectnet-1.0/images");
    for folder in &objectnet.data_folders {
        std::fs::create_dir_all(images.join(folder)).unwrap();
    }
    // A 1×1 PNG in two mapped folders, and one in a folder ObjectNet does not map to ImageNet.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82";
    for path in ["alarm_clock/a.png", "alarm_clock/b.png", "banana/c.png", "air_freshener/d.png", "banana/notes.txt"] {
        std::fs::create_dir_all(images.join(path).parent().unwrap()).unwrap();
        std::fs::write(images.join(path), png).unwrap();
    }
    let split = open_split(&Target::Registry(objectnet, dir.clone()), "test", 32).unwrap().unwrap();
    assert_eq!(split.classes, objectnet.classes);
    let clip_data::Source::Indexed(source) = split.source else { panic!("an indexed source") };
    let records: Vec<(String, i64)> = (0..source.len())
        .map(|i| {
            let r = source.record(0, i);
            let (Payload::File(path), Text::Label(label)) = (r.payload, r.text) else { panic!() };
            (path.strip_prefix(&images).unwrap().display().to_string(), label)
        })
        .collect();
    assert_eq!(records, [("alarm_clock/a.png".to_owned(), 0), ("alarm_clock/b.png".to_owned(), 0), ("banana/c.png".to_owned(), 2)]);
    assert!(open_split(&Target::Registry(objectnet, dir.clone()), "train", 32).unwrap().is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

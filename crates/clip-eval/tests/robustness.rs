//! The robustness study's sets in the registry, against CLIP_benchmark 1.6.2
//! (`scripts/gen_imagenet_subsets.py`), and the run summary.

use clip_eval::registry::{ROBUSTNESS, datasets, find};
use clip_eval::report::{DatasetResult, Report};
use clip_eval::robustness::{Robustness, fits, inverse_logit, logit};

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

/// The fits in `data/effective_robustness.json` are the least-squares lines, in logit space, of
/// the testbed points `scripts/gen_effective_robustness.py` selected, refitted here.
#[test]
fn effective_robustness_fits_are_the_testbeds_points_refitted() {
    let points: serde_json::Value = serde_json::from_str(include_str!("fixtures/effective_robustness_points.json")).unwrap();
    assert_eq!(fits().keys().collect::<Vec<_>>(), ["imagenet-a", "imagenet-r", "imagenet_sketch", "imagenetv2", "objectnet"]);
    for (name, fit) in fits() {
        for (segment, pts) in fit.segments.iter().zip(points[name].as_array().unwrap()) {
            let xy: Vec<(f64, f64)> = pts.as_array().unwrap().iter().map(|p| (logit(p[0].as_f64().unwrap()), logit(p[1].as_f64().unwrap()))).collect();
            let n = xy.len() as f64;
            let (mx, my) = (xy.iter().map(|p| p.0).sum::<f64>() / n, xy.iter().map(|p| p.1).sum::<f64>() / n);
            let slope = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / xy.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
            assert_eq!(segment.models, xy.len(), "{name}");
            assert!((slope - segment.slope).abs() < 1e-9 && (my - slope * mx - segment.intercept).abs() < 1e-9, "{name}: {slope} {segment:?}");
            // ImageNet-A's lower piece is the loosest (r 0.64 over 33 models).
            assert!(segment.r > 0.6 && xy.len() >= 30, "{name}: {segment:?}");
            let inside = |x: f64| segment.x_above.is_none_or(|a| x >= a) && segment.x_below.is_none_or(|b| x < b);
            assert!(pts.as_array().unwrap().iter().all(|p| inside(p[0].as_f64().unwrap())), "{name}");
        }
    }
    // ImageNet-A's line is piecewise at 91.86 on the class-subsampled axis, as the testbed draws it.
    let a = &fits()["imagenet-a"];
    assert_eq!((a.segments.len(), a.segments[0].x_below, a.segments[1].x_above), (2, Some(91.86), Some(91.86)));
    assert!((a.predict(91.0) - inverse_logit(a.segments[0].slope * logit(91.0) + a.segments[0].intercept)).abs() < 1e-12);
    assert!((a.predict(95.0) - inverse_logit(a.segments[1].slope * logit(95.0) + a.segments[1].intercept)).abs() < 1e-12);
    assert_eq!(fits()["objectnet"].imagenet_score().as_deref(), Some("acc1_on_objectnet_classes"));
    assert_eq!(fits()["imagenetv2"].imagenet_score(), None);
}

/// Effective robustness is the accuracy above the fit's prediction from the ImageNet accuracy it
/// reads: ImageNet's top-1 for V2 and Sketch, the class-subsampled top-1 for R, A and ObjectNet.
#[test]
fn effective_robustness_reads_the_class_subsampled_imagenet_accuracy() {
    let mut imagenet = zeroshot("imagenet1k", 0.76);
    imagenet.scores.insert("acc1_on_imagenet-r_classes".into(), 88.0);
    imagenet.scores.insert("acc1_on_objectnet_classes".into(), 80.0);
    let results = vec![imagenet, zeroshot("imagenetv2", 0.70), zeroshot("imagenet-r", 0.89), zeroshot("objectnet", 0.72), zeroshot("imagenet-a", 0.77)];
    let r = Robustness::of(&results).unwrap();
    let expected = |name: &str, x: f64, y: f64| {
        let s = &fits()[name].segments[0];
        y - inverse_logit(s.slope * logit(x) + s.intercept)
    };
    // ImageNet-A has no class-subsampled ImageNet accuracy here: it is left out of the average.
    let names: Vec<&str> = r.effective.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["imagenetv2", "imagenet-r", "objectnet"]);
    for (e, (x, y)) in r.effective.iter().zip([(76.0, 70.0), (88.0, 89.0), (80.0, 72.0)]) {
        assert!((e.effective_robustness - expected(&e.name, x, y)).abs() < 1e-9 && e.imagenet == x && e.accuracy == y, "{e:?}");
    }
    let mean = r.effective.iter().map(|e| e.effective_robustness).sum::<f64>() / 3.0;
    assert!((r.average_effective_robustness.unwrap() - mean).abs() < 1e-12);
    // The plain gap is reported beside it.
    assert!((r.gap - ((70.0 + 89.0 + 72.0 + 77.0) / 4.0 - 76.0)).abs() < 1e-9);
    let report = Report { model: "m".into(), weights: "w".into(), results, missing: vec![], failed: vec![] };
    let markdown = report.markdown();
    assert!(markdown.contains("Effective robustness (Taori et al. 2020") && markdown.contains("average over 3 sets"), "{markdown}");
    let json: serde_json::Value = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(json["robustness"]["effective"].as_array().unwrap().len(), 3);
}

/// `class_subsampled` scores ImageNet over each subset's classes only, ObjectNet's through its
/// mapping, as the testbed's `val-on-X-classes`.
#[test]
fn class_subsampled_imagenet_accuracy_uses_only_the_sets_classes() {
    use tch::Tensor;
    let r = find("imagenet-r").unwrap().imagenet_classes.clone();
    let outside_r = (0..1000).find(|i| !r.contains(i)).unwrap();
    let mut logits = vec![0f32; 3 * 1000];
    // Row 0: label r[0]; the top logit is a class outside ImageNet-R's, the next r[0]: right on
    // ImageNet-R's classes. Row 1: alarm clock's second ImageNet class (530) with the top logit on
    // its first (409): right for ObjectNet. Row 2: label r[1], predicted r[2]: wrong.
    logits[outside_r] = 9.0;
    logits[r[0]] = 5.0;
    logits[1000 + 409] = 7.0;
    logits[2000 + r[2]] = 3.0;
    let labels = Tensor::from_slice(&[r[0] as i64, 530, r[1] as i64]);
    let scores: std::collections::BTreeMap<String, f64> = clip_eval::suite::class_subsampled(&Tensor::from_slice(&logits).view([3, 1000]), &labels).unwrap().into_iter().collect();
    let on = |set: &str| scores[&format!("acc1_on_{set}_classes")];
    assert_eq!(on("imagenet-r"), 50.0, "{scores:?}");
    assert_eq!(on("objectnet"), 100.0, "{scores:?}");
    // Only the sets scored over part of ImageNet's classes, and only where a label falls in them.
    assert!(scores.keys().all(|k| ["acc1_on_imagenet-r_classes", "acc1_on_imagenet-a_classes", "acc1_on_objectnet_classes"].contains(&k.as_str())), "{scores:?}");
}

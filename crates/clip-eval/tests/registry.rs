use clip_eval::registry::{Metric, datasets, find};

#[test]
fn the_papers_27_datasets_with_their_class_counts() {
    let expected = [
        ("food101", 101),
        ("cifar10", 10),
        ("cifar100", 100),
        ("birdsnap", 500),
        ("sun397", 397),
        ("cars", 196),
        ("fgvc_aircraft", 100),
        ("voc2007", 20),
        ("dtd", 47),
        ("pets", 37),
        ("caltech101", 102),
        ("flowers", 102),
        ("mnist", 10),
        ("fer2013", 7),
        ("stl10", 10),
        ("eurosat", 10),
        ("resisc45", 45),
        ("gtsrb", 43),
        ("kitti", 4),
        ("country211", 211),
        ("pcam", 2),
        ("ucf101", 101),
        ("kinetics700", 700),
        ("clevr_counts", 8),
        ("hateful_memes", 2),
        ("renderedsst2", 2),
        ("imagenet1k", 1000),
    ];
    let all = datasets();
    assert_eq!(all.len(), 27);
    for ((name, classes), d) in expected.iter().zip(all) {
        assert_eq!((d.name.as_str(), d.classes.len()), (*name, *classes));
        assert!(!d.templates.is_empty() && d.templates.iter().all(|t| t.contains("{}")), "{name}");
        assert_eq!(d.paper_zeroshot.len(), 5, "{name}");
    }
}

#[test]
fn metrics_names_and_paper_numbers() {
    let metric = |name: &str| find(name).unwrap().metric;
    assert_eq!(metric("voc2007"), Metric::Map11point);
    assert_eq!(metric("hateful_memes"), Metric::RocAuc);
    assert_eq!(metric("kinetics700"), Metric::MeanTop1Top5);
    for name in ["fgvc_aircraft", "pets", "caltech101", "flowers"] {
        assert_eq!(metric(name), Metric::MeanPerClassRecall, "{name}");
    }
    assert_eq!(metric("imagenet1k"), Metric::Accuracy);
    // CLIP_benchmark's names find the same entries.
    assert_eq!(find("vtab/pets").unwrap().name, "pets");
    assert_eq!(find("wds_vtab-cifar10").unwrap().name, "cifar10");
    assert!(find("no-such-set").is_none());
    // Table 11 numbers quoted in public issues; model names in either spelling.
    let imagenet = find("imagenet1k").unwrap();
    assert_eq!((imagenet.paper_value("ViT-B/32"), imagenet.paper_value("RN50-quickgelu")), (Some(63.2), Some(59.6)));
    assert_eq!(find("ucf101").unwrap().paper_value("ViT-L/14@336px"), Some(76.9));
    assert_eq!(imagenet.templates.len(), 80);
    // FER2013 keeps its several names per class.
    assert_eq!(find("fer2013").unwrap().classes[3], ["happy", "smiling"]);
}

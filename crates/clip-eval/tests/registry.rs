use clip_eval::registry::{Metric, datasets, find, find_hub_repo, hub_repo_id};

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
    let all: Vec<_> = datasets().iter().filter(|d| !d.robustness).collect();
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

/// CLIP_benchmark's `benchmark/webdatasets.txt`, copied byte for byte from LAION-AI/CLIP_benchmark
/// at 48de38c1689fa6d8b4dd53e3370c669c3bb18117 (see `scripts/gen_registry.py`).
const WEBDATASETS: &str = include_str!("../../../scripts/clip_benchmark_webdatasets.txt");

#[test]
fn every_hub_repo_is_in_clip_benchmarks_list() {
    let listed: Vec<&str> = WEBDATASETS.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(listed.len(), 41);
    assert!(listed.iter().all(|l| l.starts_with("wds/")), "{listed:?}");
    let mut with_repo = 0;
    for d in datasets() {
        let Some(repo) = &d.hub_repo else { continue };
        with_repo += 1;
        let wds = d.wds_name().unwrap_or_else(|| panic!("{}: {repo} is not made from one of {:?}", d.name, d.clip_benchmark));
        assert_eq!(*repo, format!("clip-benchmark/wds_{}", wds["wds/".len()..].replace('/', "-")), "{}", d.name);
        // Food-101's copy is the one the list omits (the generator's UNLISTED).
        assert_eq!(listed.contains(&wds.as_str()), d.name != "food101", "{}: {wds}", d.name);
        assert_eq!(find_hub_repo(repo).unwrap().name, d.name);
        assert_eq!(find(&wds).unwrap().name, d.name);
    }
    assert_eq!(with_repo, 28); // 23 of Table 9's sets and the five robustness sets
    for name in ["birdsnap", "ucf101", "kinetics700", "hateful_memes"] {
        assert!(find(name).unwrap().hub_repo.is_none(), "{name}");
    }
}

#[test]
fn hub_names_of_the_paper_sets() {
    let repo = |name: &str| find(name).unwrap().hub_repo.clone();
    assert_eq!(repo("cifar10").as_deref(), Some("clip-benchmark/wds_vtab-cifar10"));
    assert_eq!(repo("sun397").as_deref(), Some("clip-benchmark/wds_sun397"));
    assert_eq!(repo("kitti").as_deref(), Some("clip-benchmark/wds_vtab-kitti_closest_vehicle_distance"));
    // The multi-label copy: whole images scored by mAP, as the paper does.
    assert_eq!(repo("voc2007").as_deref(), Some("clip-benchmark/wds_voc2007_multilabel"));
    assert_eq!(find("cifar10").unwrap().wds_name().as_deref(), Some("wds/vtab/cifar10"));
    // CLIP_benchmark's prefixed names match its names only: wds/voc2007 is its box crops.
    assert!(find("wds/voc2007").is_none() && find("wds_voc2007").is_none());
    assert_eq!(find("wds_voc2007_multilabel").unwrap().name, "voc2007");
    assert_eq!(find("wds/vtab/pets").unwrap().name, "pets");
    // hf-hub: names.
    assert_eq!(hub_repo_id("hf-hub:clip-benchmark/wds_vtab-pets"), Some("clip-benchmark/wds_vtab-pets"));
    for bad in ["clip-benchmark/wds_vtab-pets", "hf-hub:wds_vtab-pets", "hf-hub:/x", "hf-hub:a/", "hf-hub:a/b/c"] {
        assert_eq!(hub_repo_id(bad), None, "{bad}");
    }
    assert_eq!(find_hub_repo("hf-hub:clip-benchmark/wds_vtab-pets").unwrap().name, "pets");
    assert_eq!(find_hub_repo("CLIP-Benchmark/WDS_Mnist").unwrap().name, "mnist");
    assert!(find_hub_repo("clip-benchmark/wds_voc2007").is_none());
    assert!(find_hub_repo("djghosh/wds_vtab-pets_test").is_none());
}

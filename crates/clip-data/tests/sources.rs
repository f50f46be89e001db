use std::collections::BTreeMap;

use clip_data::source::{ShardSet, Source, SourceOptions, benchmark_wds};
use clip_data::transform::TrainTransform;
use clip_data::{ImageTransform, Loader, LoaderConfig, SkipCounts, TextMode};

use crate::support::{caption_members, jpeg, jpeg_bomb, png, png_bad_crc, tar, write_shard};

/// Every sample of one unshuffled epoch: keys in order, and the skips by reason name.
fn drain(source: Source, text: TextMode) -> (Vec<String>, BTreeMap<&'static str, u64>) {
    let mut config = LoaderConfig::new(3, ImageTransform::Train(TrainTransform::open_clip(16)), text);
    config.shuffle = false;
    config.drop_last = false;
    config.max_skip_fraction = 1.0;
    let loader = Loader::new(source, config).unwrap();
    let mut keys = Vec::new();
    let mut skipped = SkipCounts::default();
    let mut batches = loader.epoch(0).unwrap();
    for batch in &mut batches {
        let batch = batch.unwrap();
        assert_eq!(batch.images.size(), [batch.keys.len() as i64, 3, 16, 16]);
        keys.extend(batch.keys);
        skipped.merge(&batch.skipped);
    }
    skipped.merge(&batches.tail().skipped);
    (keys, skipped.0.iter().map(|(r, n)| (r.name(), *n)).collect())
}

fn tokens() -> TextMode {
    TextMode::Tokens { context_length: 77 }
}

#[test]
fn webdataset_shards_with_every_kind_of_damage() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_shard(dir.path(), "good.tar", 10);
    // Damaged shard: a zero-byte JPEG, a PNG with a bad CRC, a sample without caption, a JSON
    // caption, a sample without image, a decompression bomb, then a cut in the middle of a member.
    let mut members = caption_members("bad", 2);
    members.push(("bad-empty.jpg".into(), Vec::new()));
    members.push(("bad-empty.txt".into(), b"empty".to_vec()));
    members.push(("bad-crc.png".into(), png_bad_crc(3)));
    members.push(("bad-crc.txt".into(), b"bad crc".to_vec()));
    members.push(("bad-nocap.jpg".into(), jpeg(4)));
    members.push(("bad-json.webp".into(), jpeg(5)));
    members.push(("bad-json.json".into(), br#"{"caption": "from json", "url": "x"}"#.to_vec()));
    members.push(("bad-noimg.txt".into(), b"no image".to_vec()));
    members.push(("bad-bomb.jpg".into(), jpeg_bomb()));
    members.push(("bad-bomb.txt".into(), b"bomb".to_vec()));
    members.push(("bad-png.png".into(), png(6)));
    members.push(("bad-png.txt".into(), b"fine png".to_vec()));
    members.push(("bad-cut.jpg".into(), jpeg(7)));
    members.push(("bad-cut.txt".into(), b"never seen".to_vec()));
    let bytes = tar(&members);
    // Cut 100 bytes into bad-cut.jpg's data (a header is 512 bytes and starts with the name).
    let cut_at = bytes.windows(11).position(|w| w == b"bad-cut.jpg").unwrap() + 612;
    std::fs::write(dir.path().join("damaged.tar"), &bytes[..cut_at]).unwrap();
    let damaged = dir.path().join("damaged.tar").display().to_string();
    let missing = dir.path().join("missing.tar").display().to_string();

    let spec = format!("wds:{good}::{damaged}::{missing}");
    let (keys, skipped) = drain(Source::parse(&spec, &SourceOptions::default()).unwrap(), tokens());
    // 10 good + bad0000, bad0001, the JSON-captioned WebP-named JPEG and the good PNG.
    assert_eq!(keys.len(), 14, "{keys:?} {skipped:?}");
    assert!(keys.iter().any(|k| k.ends_with("damaged.tar/bad-json")));
    let expected: BTreeMap<&str, u64> = [
        ("corrupt_image", 2),   // zero-byte JPEG, bad CRC
        ("missing_caption", 1), // bad-nocap
        ("missing_image", 1),   // bad-noimg
        ("too_large", 1),       // bad-bomb: 60000 × 60000 declared
        ("truncated_tar", 1),   // bad-cut
        ("unreadable_shard", 1), // missing.tar
    ]
    .into();
    assert_eq!(skipped, expected);
}

#[test]
fn a_tar_cut_inside_a_header_and_garbage_are_truncation_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = tar(&caption_members("s", 3));
    // Cut 100 bytes into the header of s0001.txt: s0001 has lost its caption member.
    let cut_at = bytes.windows(9).position(|w| w == b"s0001.txt").unwrap() + 100;
    std::fs::write(dir.path().join("a.tar"), &bytes[..cut_at]).unwrap();
    std::fs::write(dir.path().join("b.tar"), b"this is not a tar file at all, just text").unwrap();
    let spec = format!("wds:{}/{{a,b}}.tar", dir.path().display());
    let (keys, skipped) = drain(Source::parse(&spec, &SourceOptions::default()).unwrap(), tokens());
    assert_eq!(keys.len(), 1, "{keys:?}"); // s0000 complete; s0001 loses its caption member
    assert_eq!(skipped, [("truncated_tar", 2)].into());
}

#[test]
fn pipe_sources_stream_command_output_and_failures_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_shard(dir.path(), "p.tar", 5);
    let spec = format!("wds:pipe:cat {file}::pipe:exit 3");
    let (keys, skipped) = drain(Source::parse(&spec, &SourceOptions::default()).unwrap(), tokens());
    assert_eq!(keys.len(), 5);
    assert!(keys[0].starts_with("pipe:cat"));
    assert_eq!(skipped, [("unreadable_shard", 1)].into());
}

#[test]
fn brace_patterns_and_double_colons_expand_in_order() {
    let set = ShardSet::parse("/d/a-{000..002}.tar::pipe:cat /d/b-{8..9}.tar").unwrap();
    assert_eq!(set.shards(), ["/d/a-000.tar", "/d/a-001.tar", "/d/a-002.tar", "pipe:cat /d/b-8.tar", "pipe:cat /d/b-9.tar"]);
    assert!(ShardSet::parse("::").is_err());
}

#[test]
fn csv_and_tsv_tables_resolve_paths_against_their_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    for i in 0..4 {
        std::fs::write(dir.path().join(format!("img/{i}.jpg")), jpeg(i)).unwrap();
    }
    std::fs::write(dir.path().join("img/zero.jpg"), b"").unwrap();
    let rows = "filepath,title\nimg/0.jpg,a cat\nimg/1.jpg,\"a dog, sitting\"\nimg/404.jpg,gone\nimg/zero.jpg,empty\nimg/2.jpg\nimg/3.jpg,last\n";
    std::fs::write(dir.path().join("pairs.csv"), rows).unwrap();
    let spec = format!("csv:{}", dir.path().join("pairs.csv").display());
    let (keys, skipped) = drain(Source::parse(&spec, &SourceOptions::default()).unwrap(), tokens());
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(skipped, [("corrupt_image", 1), ("missing_caption", 1), ("missing_image", 1)].into());

    let tsv = "title\tpath\nfirst\timg/0.jpg\nsecond\timg/1.jpg\n";
    std::fs::write(dir.path().join("pairs.tsv"), tsv).unwrap();
    let mut options = SourceOptions::default();
    let spec = format!("csv:{}", dir.path().join("pairs.tsv").display());
    let error = Source::parse(&spec, &options).unwrap_err().to_string();
    assert!(error.contains("no column `filepath`") && error.contains("title, path"), "{error}");
    options.csv.img_key = "path".into();
    let (keys, _) = drain(Source::parse(&spec, &options).unwrap(), tokens());
    assert_eq!(keys.len(), 2);
}

#[test]
fn folders_imagefolders_and_clip_benchmark_sets() {
    let dir = tempfile::tempdir().unwrap();
    for (class, n) in [("cat", 3), ("dog", 2)] {
        std::fs::create_dir_all(dir.path().join("train").join(class)).unwrap();
        for i in 0..n {
            std::fs::write(dir.path().join(format!("train/{class}/{i}.png")), png(i)).unwrap();
        }
    }
    std::fs::write(dir.path().join("train/dog/notes.txt"), b"not an image").unwrap();
    let spec = format!("folder:{}", dir.path().join("train").display());
    let (keys, skipped) = drain(Source::parse(&spec, &SourceOptions::default()).unwrap(), TextMode::Ignore);
    assert_eq!((keys.len(), skipped.len()), (5, 0));

    let spec = format!("imagefolder:{}", dir.path().join("train").display());
    let source = Source::parse(&spec, &SourceOptions::default()).unwrap();
    let mut config = LoaderConfig::new(5, ImageTransform::Train(TrainTransform::open_clip(8)), TextMode::Labels);
    config.shuffle = false;
    let batch = Loader::new(source, config).unwrap().epoch(0).unwrap().next().unwrap().unwrap();
    assert_eq!(Vec::<i64>::try_from(batch.labels.unwrap()).unwrap(), [0, 0, 0, 1, 1]);

    // CLIP_benchmark's layout: labels in .cls members, class names and templates beside the splits.
    let root = dir.path().join("cb");
    std::fs::create_dir_all(root.join("test")).unwrap();
    std::fs::write(root.join("classnames.txt"), "apple\nbanana\n").unwrap();
    std::fs::write(root.join("zeroshot_classification_templates.txt"), "a photo of a {c}.\n").unwrap();
    std::fs::write(root.join("test/nshards.txt"), "2\n").unwrap();
    for shard in 0..2u32 {
        let members: Vec<(String, Vec<u8>)> = (0..3u32)
            .flat_map(|i| {
                let key = format!("s{:07}", shard * 3 + i);
                [(format!("{key}.webp"), png(i)), (format!("{key}.cls"), format!("{}", (shard + i) % 2).into_bytes())]
            })
            .collect();
        std::fs::write(root.join(format!("test/{shard}.tar")), tar(&members)).unwrap();
    }
    let (_, classes) = benchmark_wds(&root, "test").unwrap();
    assert_eq!(classes.classnames, ["apple", "banana"]);
    assert_eq!(classes.templates, ["a photo of a {c}."]);
    let spec = format!("clip_benchmark:{}", root.display());
    let (keys, skipped) = drain(Source::parse(&spec, &SourceOptions::default()).unwrap(), TextMode::Labels);
    assert_eq!((keys.len(), skipped.len()), (6, 0));
    assert!(Source::parse(&format!("clip_benchmark:{}@train", root.display()), &SourceOptions::default()).is_err());
}

#[test]
fn bad_specs_are_clear_errors() {
    let options = SourceOptions::default();
    for (spec, needle) in [
        ("s3://bucket", "unknown source"),
        ("csv:", "needs a file"),
        ("folder:/nonexistent/dir", "/nonexistent/dir"),
        ("csv:/nonexistent.csv", "/nonexistent.csv"),
        ("wds:a-{0..3.tar", "unbalanced"),
    ] {
        let error = Source::parse(spec, &options).unwrap_err().to_string();
        assert!(error.contains(needle), "{spec}: {error}");
    }
}

#[test]
fn part_plans_cut_shards_and_index_ranges_and_batches_carry_sample_info() {
    use clip_data::PreprocessConfig;
    use clip_data::source::{PartPlan, PartSpan};
    let dir = tempfile::tempdir().unwrap();
    let mut members = caption_members("s", 2);
    members.push(("s0001.json".into(), br#"{"url": "http://x/1", "caption": "from json"}"#.to_vec()));
    std::fs::write(dir.path().join("0.tar"), tar(&members)).unwrap();
    let second = write_shard(dir.path(), "1.tar", 3);
    let spec = format!("wds:{}/{{0..1}}.tar", dir.path().display());
    let shards = Source::parse(&spec, &SourceOptions::default()).unwrap();
    let plan = PartPlan::new(&shards, 1).unwrap();
    assert_eq!(plan.parts().iter().map(|p| p.span).collect::<Vec<_>>(), [PartSpan::Shard(0), PartSpan::Shard(1)]);
    assert_eq!(plan.for_rank(1, 2).map(|p| p.index).collect::<Vec<_>>(), [1]);

    let eval = || {
        let mut config = LoaderConfig::new(2, ImageTransform::Eval(PreprocessConfig::openai(16)), TextMode::Ignore);
        (config.shuffle, config.drop_last) = (false, false);
        config
    };
    let loader = Loader::new(PartPlan::source(&shards, &plan.parts()[1]).unwrap(), eval()).unwrap();
    let keys: Vec<String> = loader.epoch(0).unwrap().flat_map(|b| b.unwrap().keys).collect();
    assert_eq!(keys, (0..3).map(|i| format!("{second}/1{i:04}")).collect::<Vec<_>>());
    // Another source on the same decode threads; the caption and json whatever the text mode.
    let first = loader.with_source(PartPlan::source(&shards, &plan.parts()[0]).unwrap()).unwrap();
    let info: Vec<_> = first.epoch(0).unwrap().flat_map(|b| b.unwrap().info).collect();
    assert_eq!(info.len(), 2);
    assert_eq!(info[0].size, Some([40, 30])); // jpeg(0) is 40 x 30
    assert_eq!(info[1].size, Some([41, 31]));
    assert_eq!(info[1].caption.as_deref(), Some("a photo number 1 of s"), "the .txt wins over the json's caption");
    assert!(info[1].json.as_deref().is_some_and(|j| j.contains("http://x/1")) && info[0].json.is_none());

    let folder = dir.path().join("images");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..5 {
        std::fs::write(folder.join(format!("{i}.png")), png(i)).unwrap();
    }
    let indexed = Source::parse(&format!("folder:{}", folder.display()), &SourceOptions::default()).unwrap();
    let plan = PartPlan::new(&indexed, 2).unwrap();
    let spans: Vec<PartSpan> = plan.parts().iter().map(|p| p.span).collect();
    assert_eq!(spans, [0..2, 2..4, 4..5].map(|r| PartSpan::Indices { start: r.start, end: r.end }));
    let loader = Loader::new(PartPlan::source(&indexed, &plan.parts()[1]).unwrap(), eval()).unwrap();
    let info: Vec<_> = loader.epoch(0).unwrap().flat_map(|b| b.unwrap().info).collect();
    let paths: Vec<_> = info.iter().map(|i| i.path.clone().unwrap()).collect();
    assert_eq!(paths, [folder.join("2.png"), folder.join("3.png")]);
    assert!(PartPlan::new(&indexed, 0).is_err());
}

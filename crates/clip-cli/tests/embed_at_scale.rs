use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::support::{self, Setup, read_npy};

/// The tiny ViT with the real vocabulary of `embed.rs`, so that captions can be embedded.
const CONFIG: &str = r#"{"embed_dim": 16, "quick_gelu": true,
  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}"#;

fn setup(name: &str) -> Setup {
    support::setup(&format!("clip-embed-scale-{name}"), CONFIG, 5)
}

fn clip(s: &Setup, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clip"));
    command.args(args).arg("--model-config").arg(&s.config).arg("--weights").arg(&s.weights).args(["--device", "cpu"]);
    command
}

fn embed(s: &Setup, source: &str, out: &Path, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let output =
        clip(s, &["embed", "--source", source, "--out", out, "--batch-size", "3", "--threads", "2"]).args(extra).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// A photo-like JPEG of `w × h` whose pixels depend on `seed`.
fn jpeg(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 5 + seed * 37) as u8, (y * 3 + seed * 11) as u8, ((x ^ y) + seed) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// Writes `members` (name, bytes) into `dir/stage/` and packs them, in that order, as the tar
/// shard `path` (GNU tar, ustar format).
fn shard(path: &Path, members: &[(String, Vec<u8>)]) {
    let stage = path.with_extension("stage");
    std::fs::create_dir_all(&stage).unwrap();
    for (name, bytes) in members {
        std::fs::write(stage.join(name), bytes).unwrap();
    }
    let status = Command::new("tar")
        .args(["--format=ustar", "-cf"])
        .arg(path)
        .arg("-C")
        .arg(&stage)
        .args(members.iter().map(|(n, _)| n.as_str()))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(&stage).unwrap();
}

/// Three shards of image-caption pairs with img2dataset-style json (`url`, `status`,
/// `original_width`); shard 1 holds a corrupt JPEG. Returns the spec and, in shard order, each
/// kept sample's key, caption and image bytes.
fn shards(dir: &Path) -> (String, Vec<(String, String, Vec<u8>)>) {
    let mut kept = Vec::new();
    for s in 0..3u32 {
        let mut members = Vec::new();
        for i in 0..4u32 {
            let key = format!("{s:05}{i:04}");
            let caption = format!("photo {i} of shard {s}");
            let image = if s == 1 && i == 2 { b"\xff\xd8\xff\xe0 not really a jpeg".to_vec() } else { jpeg(40 + 7 * i, 30 + 5 * s, 10 * s + i) };
            let json = format!(r#"{{"url": "http://example.invalid/{key}.jpg", "status": "success", "original_width": {}, "caption": "ignored"}}"#, 400 + i);
            members.push((format!("{key}.jpg"), image.clone()));
            members.push((format!("{key}.txt"), caption.clone().into_bytes()));
            members.push((format!("{key}.json"), json.into_bytes()));
            if !(s == 1 && i == 2) {
                kept.push((key, caption, image));
            }
        }
        shard(&dir.join(format!("{s}.tar")), &members);
    }
    (format!("wds:{}/{{0..2}}.tar", dir.display()), kept)
}

/// A parquet table as `column -> values`, each value as text (nulls `None`), and the column order.
fn table(path: &Path) -> (Vec<String>, BTreeMap<String, Vec<Option<String>>>) {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let names = reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_owned()).collect();
    let mut columns: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for row in reader.get_row_iter(None).unwrap() {
        for (name, field) in row.unwrap().get_column_iter() {
            let value = match field {
                Field::Null => None,
                Field::Str(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            columns.entry(name.clone()).or_default().push(value);
        }
    }
    (names, columns)
}

/// A float16 or float32 `.npy` as float32 rows, and its type.
fn npy_rows(path: &Path) -> (String, usize, usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let descr = header.split("'descr': '").nth(1).unwrap().split('\'').next().unwrap().to_owned();
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let dims: Vec<usize> = shape.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    let data = &bytes[10 + header_len..];
    let values: Vec<f32> = match descr.as_str() {
        "<f4" => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        "<f2" => {
            let t = tch::Tensor::from_slice(data).view_dtype(tch::Kind::Half).to_kind(tch::Kind::Float);
            Vec::<f32>::try_from(t).unwrap()
        }
        other => panic!("unexpected dtype {other}"),
    };
    assert_eq!(values.len(), dims[0] * dims[1]);
    (descr, dims[0], dims[1], values)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Every file below `dir`, relative path to bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for folder in std::fs::read_dir(dir).unwrap() {
        let folder = folder.unwrap().path();
        if folder.is_dir() {
            for file in std::fs::read_dir(&folder).unwrap() {
                let file = file.unwrap().path();
                out.insert(file.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&file).unwrap());
            }
        } else {
            out.insert(folder.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&folder).unwrap());
        }
    }
    out
}

#[test]
fn webdataset_parts_in_clip_retrievals_layout_match_embed_images_and_texts() {
    let s = setup("wds");
    let (spec, kept) = shards(&s.dir);
    let out = s.dir.join("out");
    let output = embed(&s, &spec, &out, &["--what", "both", "--dtype", "float32"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("corrupt_image 1"), "{stderr}");

    // The same images and captions through the --images / --texts forms.
    let (folder, captions) = (s.dir.join("images"), s.dir.join("captions.txt"));
    std::fs::create_dir_all(&folder).unwrap();
    for (key, _, image) in &kept {
        std::fs::write(folder.join(format!("{key}.jpg")), image).unwrap();
    }
    std::fs::write(&captions, kept.iter().map(|k| k.1.as_str()).collect::<Vec<_>>().join("\n")).unwrap();
    let (images_npy, texts_npy) = (s.dir.join("images.npy"), s.dir.join("texts.npy"));
    for (flag, input, npy) in [("--images", &folder, &images_npy), ("--texts", &captions, &texts_npy)] {
        let o = clip(&s, &["embed", flag, input.to_str().unwrap(), "--out", npy.to_str().unwrap(), "--batch-size", "3"]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (image_rows, text_rows) = (read_npy(&images_npy).2, read_npy(&texts_npy).2);

    let mut row = 0;
    for (part, expected) in [(0, 4), (1, 3), (2, 4)] {
        let (names, columns) = table(&out.join(format!("metadata/metadata_{part}.parquet")));
        assert_eq!(names, ["key", "image_path", "caption", "width", "height", "original_width", "status", "url"]);
        let ours = &kept[row..row + expected];
        let keys: Vec<Option<String>> = ours.iter().map(|k| Some(k.0.clone())).collect();
        assert_eq!(columns["key"], keys);
        assert_eq!(columns["image_path"], keys, "clip-retrieval's image_path is the WebDataset key");
        assert_eq!(columns["caption"], ours.iter().map(|k| Some(k.1.clone())).collect::<Vec<_>>(), "the .txt wins over the json");
        for (i, (key, _, image)) in ours.iter().enumerate() {
            let decoded = image::load_from_memory(image).unwrap();
            assert_eq!(columns["width"][i].as_deref(), Some(decoded.width().to_string().as_str()));
            assert_eq!(columns["height"][i].as_deref(), Some(decoded.height().to_string().as_str()));
            assert_eq!(columns["url"][i].as_deref(), Some(format!("http://example.invalid/{key}.jpg").as_str()));
        }
        let (descr, rows, dim, images) = npy_rows(&out.join(format!("img_emb/img_emb_{part}.npy")));
        assert_eq!((descr.as_str(), rows, dim), ("<f4", expected, 16));
        assert!(max_diff(&images, &image_rows[row * 16..(row + expected) * 16]) < 1e-6, "part {part} images");
        let (_, rows, _, texts) = npy_rows(&out.join(format!("text_emb/text_emb_{part}.npy")));
        assert_eq!(rows, expected);
        assert!(max_diff(&texts, &text_rows[row * 16..(row + expected) * 16]) < 1e-6, "part {part} texts");
        row += expected;
    }
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("stats/stats_1.json")).unwrap()).unwrap();
    assert_eq!(stats, serde_json::json!({"rows": 3, "read": 4, "skipped": {"corrupt_image": 1}}));

    // Texts alone: the same rows, no image embeddings; float16 is the default, as clip-retrieval's.
    let texts_only = s.dir.join("texts-only");
    embed(&s, &spec, &texts_only, &["--what", "texts", "--dtype", "float32"]);
    assert!(!texts_only.join("img_emb/img_emb_0.npy").exists());
    for part in 0..3 {
        let name = format!("text_emb/text_emb_{part}.npy");
        assert_eq!(std::fs::read(texts_only.join(&name)).unwrap(), std::fs::read(out.join(&name)).unwrap());
    }
    // A rerun asking for more than was written redoes those parts, and ends as the full run did.
    let again = embed(&s, &spec, &texts_only, &["--what", "both", "--dtype", "float32"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("3 of this rank's 3 to write"));
    assert_eq!(files(&texts_only), files(&out));
    let half = s.dir.join("half");
    embed(&s, &spec, &half, &[]);
    let (descr, _, _, values) = npy_rows(&half.join("img_emb/img_emb_0.npy"));
    assert_eq!(descr, "<f2");
    assert!(!half.join("text_emb").exists(), "images alone: no text_emb folder");
    assert!(max_diff(&values, &image_rows[..4 * 16]) < 2e-3);
    std::fs::remove_dir_all(&s.dir).unwrap();
}

/// `n` JPEGs of assorted sizes in `dir/photos`, one unreadable.
fn photos(dir: &Path, n: u32) -> PathBuf {
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..n {
        let bytes = if i == 5 { b"not a jpeg at all".to_vec() } else { jpeg(33 + i % 13 * 9, 35 + i % 7 * 11, i) };
        std::fs::write(photos.join(format!("p{i:03}.jpg")), bytes).unwrap();
    }
    photos
}

#[test]
fn a_run_killed_mid_way_resumes_to_the_parts_of_an_uninterrupted_run() {
    let s = setup("kill");
    // Twelve shards read through a slow pipe, so that the run is still going when it is killed.
    for n in 0..12u32 {
        let members: Vec<(String, Vec<u8>)> = (0..3u32).map(|i| (format!("{n:02}{i:02}.jpg"), jpeg(30 + 9 * i, 40 + n, n * 3 + i))).collect();
        shard(&s.dir.join(format!("{n:02}.tar")), &members);
    }
    let source = format!("wds:pipe:sleep 0.25 && cat {}/{{00..11}}.tar", s.dir.display());
    let whole = s.dir.join("whole");
    embed(&s, &source, &whole, &[]);
    let reference = files(&whole);
    assert_eq!(reference.keys().filter(|p| p.starts_with("metadata")).count(), 12);

    let out = s.dir.join("killed");
    let mut child = clip(&s, &["embed", "--source", &source, "--out", out.to_str().unwrap(), "--batch-size", "3"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = |dir: &Path| {
        std::fs::read_dir(dir.join("metadata")).map_or(0, |d| d.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".parquet")).count())
    };
    while done(&out) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let finished = done(&out);
    assert!((3..12).contains(&finished), "killed after {finished} of 12 parts: not mid-way");
    // No part is half-written: a part with its table has all its files, as the whole run has them.
    for (path, bytes) in files(&out) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // a staged file, invisible to readers
        }
        let part = name.rsplit('_').next().unwrap().split('.').next().unwrap().to_owned();
        if out.join(format!("metadata/metadata_{part}.parquet")).exists() {
            assert_eq!(&bytes, &reference[&path], "{}", path.display());
            assert!(out.join(format!("img_emb/img_emb_{part}.npy")).exists() && out.join(format!("stats/stats_{part}.json")).exists());
        }
    }
    let rerun = embed(&s, &source, &out, &[]);
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(stderr.contains(&format!("{} of this rank's 12 to write, {finished} already complete", 12 - finished)), "{stderr}");
    assert_eq!(files(&out), reference, "resumed parts, byte for byte, and no stray file");
    std::fs::remove_dir_all(&s.dir).unwrap();
}

#[test]
fn two_ranks_write_the_parts_of_one_process_and_count_the_skips() {
    let s = setup("ranks");
    let (spec, _) = shards(&s.dir);
    let folder = format!("folder:{}", photos(&s.dir, 10).display());
    for (source, extra) in [(&spec, &["--what", "both"][..]), (&folder, &["--part-size", "4"][..])] {
        let one = s.dir.join("one");
        embed(&s, source, &one, extra);
        let two = s.dir.join("two");
        let mut launch = Command::new(env!("CARGO_BIN_EXE_clip"));
        launch.args(["launch", "--nproc", "2", "--", "embed", "--source", source, "--out", two.to_str().unwrap()]);
        launch.arg("--model-config").arg(&s.config).arg("--weights").arg(&s.weights);
        let output = launch.args(["--device", "cpu", "--batch-size", "3", "--threads", "2"]).args(extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains("[rank 0/2]") && stderr.contains("[rank 1/2]"), "{stderr}");
        assert_eq!(files(&two), files(&one), "{source}");
        let skipped: u64 = files(&two)
            .iter()
            .filter(|(p, _)| p.starts_with("stats"))
            .map(|(_, b)| serde_json::from_slice::<serde_json::Value>(b).unwrap()["skipped"]["corrupt_image"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(skipped, 1, "{source}");
        std::fs::remove_dir_all(&one).unwrap();
        std::fs::remove_dir_all(&two).unwrap();
    }
    std::fs::remove_dir_all(&s.dir).unwrap();
}

#[test]
fn refusals_are_clear() {
    let s = setup("refuse");
    let folder = format!("folder:{}", photos(&s.dir, 3).display());
    let out = s.dir.join("out");
    let texts = clip(&s, &["embed", "--source", &folder, "--out", out.to_str().unwrap(), "--what", "texts"]).output().unwrap();
    assert!(!texts.status.success());
    assert!(String::from_utf8_lossy(&texts.stderr).contains("needs captions"));
    embed(&s, &folder, &out, &[]);
    let other = clip(&s, &["embed", "--source", &folder, "--out", out.to_str().unwrap(), "--dtype", "float32"]).output().unwrap();
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("another run"), "{}", String::from_utf8_lossy(&other.stderr));
    let flag = clip(&s, &["embed", "--images", "/nonexistent", "--out", "/tmp/never.npy", "--part-size", "3"]).output().unwrap();
    assert!(!flag.status.success(), "--part-size needs --source");
    std::fs::remove_dir_all(&s.dir).unwrap();
}

/// `--source` runs set OpenMP's wait policy to passive before libgomp reads it (libgomp prints
/// the spin count it took with `OMP_DISPLAY_ENV=VERBOSE`: 0 when passive, 300000 by default); an
/// explicit setting, and the other commands, are left alone.
#[test]
fn embedding_a_source_waits_passively_unless_told_otherwise() {
    let s = setup("wait-policy");
    let photos = photos(&s.dir, 2);
    let folder = format!("folder:{}", photos.display());
    let spin_count = |args: &[&str], policy: Option<&str>| {
        let mut command = clip(&s, args);
        command.env("OMP_DISPLAY_ENV", "VERBOSE").env_remove("OMP_WAIT_POLICY");
        if let Some(policy) = policy {
            command.env("OMP_WAIT_POLICY", policy);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let line = stderr.lines().find(|l| l.trim_start().starts_with("GOMP_SPINCOUNT")).unwrap_or_else(|| panic!("no OpenMP settings shown:\n{stderr}"));
        line.split('\'').nth(1).unwrap().to_owned()
    };
    let out = |name: &str| s.dir.join(name).to_str().unwrap().to_owned();
    assert_eq!(spin_count(&["embed", "--source", &folder, "--out", &out("a")], None), "0");
    assert_eq!(spin_count(&["--quiet", "embed", &format!("--source={folder}"), "--out", &out("b")], None), "0");
    assert_ne!(spin_count(&["embed", "--source", &folder, "--out", &out("c")], Some("ACTIVE")), "0");
    assert_eq!(spin_count(&["embed", "--images", photos.to_str().unwrap(), "--out", &out("d.npy")], None), "300000");
    std::fs::remove_dir_all(&s.dir).unwrap();
}

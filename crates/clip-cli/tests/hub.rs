//! `clip` against a loopback hub (clip-testhub on 127.0.0.1, LFS files redirected to `localhost`):
//! models by `hf-hub:`, `local-dir:` and tag, faults, offline use, several ranks, `clip classify`,
//! and benchmark datasets from a dataset repo. No test reaches any other host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clip_testhub::TestHub;

use crate::support::read_npy;

const REPO: &str = "test/tiny-hub";
const WEIGHTS_KEY: &str = "test/tiny-hub/open_clip_model.safetensors";
/// A SigLIP-shaped repo (tests/fixtures/tiny-siglip-hub): SigLIP's text tower and preprocessing,
/// a SentencePiece tokenizer in the repo itself.
const SIGLIP_REPO: &str = "test/tiny-siglip";
const PHOTOS: [&str; 5] = ["chelsea.png", "coffee.png", "camera.png", "logo.png", "rocket.jpg"];

/// How far our results may be from open_clip's for an image: 1e-5, except for JPEGs, whose
/// decoding differs from libjpeg-turbo's by up to 2/255 on some pixels (clip-data's decode test).
fn tolerance(photo: &str) -> f64 {
    if photo.ends_with(".jpg") { 2e-4 } else { 1e-5 }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// A fresh folder with a hub root serving the tiny-hub fixture model, and the four photos.
struct World {
    dir: PathBuf,
    hub: TestHub,
}

impl World {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("clip-hub-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let model = dir.join("hub/models").join(REPO);
        std::fs::create_dir_all(&model).unwrap();
        for file in ["open_clip_config.json", "open_clip_model.safetensors"] {
            std::fs::copy(fixtures().join("tiny-hub").join(file), model.join(file)).unwrap();
        }
        let siglip = dir.join("hub/models").join(SIGLIP_REPO);
        std::fs::create_dir_all(&siglip).unwrap();
        for file in std::fs::read_dir(fixtures().join("tiny-siglip-hub")).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, siglip.join(file.file_name().unwrap())).unwrap();
        }
        std::fs::create_dir_all(dir.join("images")).unwrap();
        for photo in PHOTOS {
            let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip-data/tests/fixtures/images").join(photo);
            std::fs::copy(from, dir.join("images").join(photo)).unwrap();
        }
        let hub = TestHub::start(&dir.join("hub"));
        Self { dir, hub }
    }

    fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// `clip ARGS` with the hub environment pointing at the loopback hub and this world's cache.
    fn clip(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clip"));
        command.args(args).env("HF_ENDPOINT", self.hub.endpoint()).env("HF_HUB_CACHE", self.cache()).env("OMP_NUM_THREADS", "1");
        for var in ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_HOME", "HUGGINGFACE_HUB_CACHE"] {
            command.env_remove(var);
        }
        // HOME too: OpenAI's direct downloads are cached under ~/.cache/clip.
        command.env("HF_HOME", self.dir.join("hf-home")).env("HOME", self.dir.join("home"));
        command
    }

    fn embed(&self, model: &str, out: &str) -> Command {
        let images = self.dir.join("images");
        let out = self.dir.join(out);
        let mut command = self.clip(&["embed", "--model", model, "--device", "cpu"]);
        command.arg("--images").arg(images).arg("--out").arg(out);
        command
    }

    fn weights_size(&self) -> u64 {
        std::fs::metadata(fixtures().join("tiny-hub/open_clip_model.safetensors")).unwrap().len()
    }

    /// Every file under the cache's snapshots of the tiny-hub repo.
    fn snapshot_files(&self) -> Vec<PathBuf> {
        let snapshots = self.cache().join("models--test--tiny-hub/snapshots");
        let mut files = Vec::new();
        for commit in std::fs::read_dir(snapshots).into_iter().flatten().flatten() {
            files.extend(std::fs::read_dir(commit.path()).unwrap().flatten().map(|e| e.path()));
        }
        files
    }
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    output
}

fn failed(output: Output) -> String {
    assert!(!output.status.success(), "expected a failure: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("classify.json")).unwrap()).unwrap()
}

/// The fixture's image features (open_clip's, through its own preprocessing) for files in byte
/// order of name, as `clip embed` lists a folder.
fn open_clip_features_in_file_order() -> Vec<(String, Vec<f64>)> {
    let e = expected();
    let names: Vec<&str> = e["images"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by_key(|&i| names[i]);
    order.iter().map(|&i| (names[i].to_owned(), e["image_features"][i].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect())).collect()
}

/// Each row of `ours` against open_clip's, within the photo's tolerance.
fn assert_close_rows(ours: &[f32], theirs: &[(String, Vec<f64>)]) {
    let dim = theirs[0].1.len();
    assert_eq!(ours.len(), theirs.len() * dim);
    for (row, (photo, expected)) in ours.chunks(dim).zip(theirs) {
        let delta = row.iter().zip(expected).map(|(&a, &b)| (f64::from(a) - b).abs()).fold(0.0, f64::max);
        assert!(delta <= tolerance(photo), "{photo}: max |Δ| {delta} against open_clip");
    }
}

/// Rows of a JSON array of arrays, as f64.
fn json_rows(value: &serde_json::Value) -> Vec<Vec<f64>> {
    value.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()).collect()
}

#[test]
fn a_siglip_shaped_hub_repo_embeds_images_and_texts_as_open_clip_does() {
    let w = World::new("siglip");
    let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("siglip.json")).unwrap()).unwrap();
    let model = format!("hf-hub:{SIGLIP_REPO}");
    // Images: SigLIP's preprocessing from the repo's preprocess_cfg; no tokenizer is fetched.
    ok(w.embed(&model, "images.npy").output().unwrap());
    assert_eq!(w.hub.requests("GET", "spiece.model"), 0, "{:?}", w.hub.log());
    let names: Vec<&str> = e["images"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let features = json_rows(&e["image_features"]);
    let mut theirs: Vec<(String, Vec<f64>)> = names.iter().map(|n| (*n).to_owned()).zip(features).collect();
    theirs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_close_rows(&read_npy(&w.dir.join("images.npy")).2, &theirs);

    // Texts: the repo's own SentencePiece tokenizer, fetched through the hub (hf_tokenizer_name
    // names the repo), with `canonicalize` cleaning; then again offline from the cache.
    let texts: Vec<&str> = e["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let file = w.dir.join("texts.txt");
    std::fs::write(&file, texts.join("\n") + "\n").unwrap();
    for (out, offline) in [("texts.npy", false), ("texts-offline.npy", true)] {
        let mut command = w.clip(&["embed", "--model", &model, "--device", "cpu", "--texts", file.to_str().unwrap()]);
        command.arg("--out").arg(w.dir.join(out));
        if offline {
            w.hub.reset_stats();
            command.arg("--offline");
        }
        ok(command.output().unwrap());
        let (rows, cols, ours) = read_npy(&w.dir.join(out));
        assert_eq!((rows, cols), (texts.len(), 16));
        for (i, (row, expected)) in ours.chunks(cols).zip(json_rows(&e["text_features"])).enumerate() {
            let delta = row.iter().zip(&expected).map(|(&a, &b)| (f64::from(a) - b).abs()).fold(0.0, f64::max);
            assert!(delta <= 1e-5, "text {i} {:?}: max |Δ| {delta} against open_clip", texts[i]);
        }
    }
    assert!(w.hub.log().is_empty(), "offline, yet requests were made: {:?}", w.hub.log());
    assert!(w.cache().join("models--test--tiny-siglip/snapshots").read_dir().unwrap().next().unwrap().unwrap().path().join("spiece.model").exists());

    // `clip tokenize` with the same model gives open_clip's HFTokenizer ids.
    let mut command = w.clip(&["tokenize", "--model", &model, "--offline"]);
    command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), (texts.join("\n") + "\n").as_bytes()).unwrap();
    let out = ok(child.wait_with_output().unwrap());
    let ids: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ids, e["ids"].as_array().unwrap().clone());

    // `clip classify`: SigLIP's per-label sigmoid(scale · cos + bias), not a softmax. Near 0 at
    // random init, so compared as log-probabilities: a cosine off by the photo's tolerance moves
    // the logit by exp(logit_scale) (14.3) times that.
    let labels: Vec<&str> = e["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let mut command = w.clip(&["classify", "--model", &model, "--device", "cpu", "--json", "--offline", "--top", "4", "--templates", "seed"]);
    command.args(["--labels", &labels.join(",")]).args(names.iter().map(|n| w.dir.join("images").join(n)));
    let out = ok(command.output().unwrap());
    for (i, line) in String::from_utf8_lossy(&out.stdout).lines().enumerate() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        for t in line["top"].as_array().unwrap() {
            let label = labels.iter().position(|l| *l == t["label"].as_str().unwrap()).unwrap();
            let (ours, theirs) = (t["prob"].as_f64().unwrap(), e["probs"][i][label].as_f64().unwrap());
            assert!((ours.ln() - theirs.ln()).abs() <= 15.0 * tolerance(names[i]), "{}: {t} vs {theirs}", names[i]);
        }
    }
}

#[test]
fn a_hub_model_is_fetched_once_then_checked_by_metadata_and_used_offline() {
    let w = World::new("fetch");
    let out = ok(w.embed("hf-hub:test/tiny-hub", "a.npy").output().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fetched open_clip_model.safetensors"), "one line per file off a terminal: {stderr}");
    // open_clip's features of the same repo, with its preprocess_cfg (0.5 mean/std, bilinear, squash).
    let (rows, cols, values) = read_npy(&w.dir.join("a.npy"));
    assert_eq!((rows, cols), (PHOTOS.len(), 16));
    assert_close_rows(&values, &open_clip_features_in_file_order());
    // huggingface_hub's layout: a relative link into blobs/, a ref naming the commit.
    let link = w.cache().join("models--test--tiny-hub/snapshots").read_dir().unwrap().next().unwrap().unwrap().path().join("open_clip_model.safetensors");
    let target = std::fs::read_link(&link).unwrap();
    assert!(target.starts_with("../../blobs"), "{}", target.display());
    let commit = std::fs::read_to_string(w.cache().join("models--test--tiny-hub/refs/main")).unwrap();
    assert_eq!(commit.len(), 40);
    assert_eq!(w.hub.bytes_served(WEIGHTS_KEY), w.weights_size());

    // A second run asks for metadata only.
    w.hub.reset_stats();
    ok(w.embed("hf-hub:test/tiny-hub", "b.npy").output().unwrap());
    assert_eq!(w.hub.requests("GET", ""), 0, "{:?}", w.hub.log());
    assert!(w.hub.requests("HEAD", "resolve/main/open_clip_model.safetensors") >= 1);
    assert_eq!(std::fs::read(w.dir.join("a.npy")).unwrap(), std::fs::read(w.dir.join("b.npy")).unwrap());

    // Offline: not one request, the same embeddings.
    w.hub.reset_stats();
    ok(w.embed("hf-hub:test/tiny-hub", "c.npy").env("HF_HUB_OFFLINE", "1").output().unwrap());
    ok(w.embed("hf-hub:test/tiny-hub", "d.npy").arg("--offline").output().unwrap());
    assert!(w.hub.log().is_empty(), "{:?}", w.hub.log());
    assert_eq!(std::fs::read(w.dir.join("a.npy")).unwrap(), std::fs::read(w.dir.join("c.npy")).unwrap());

    // The same folder as local-dir: gives the same bytes.
    let local = format!("local-dir:{}", fixtures().join("tiny-hub").display());
    ok(w.embed(&local, "e.npy").output().unwrap());
    assert_eq!(std::fs::read(w.dir.join("a.npy")).unwrap(), std::fs::read(w.dir.join("e.npy")).unwrap());
}

#[test]
fn a_cut_connection_is_resumed_within_the_command() {
    let w = World::new("cut");
    let size = w.weights_size();
    w.hub.cut(WEIGHTS_KEY, size / 2, 1);
    let out = ok(w.embed("hf-hub:test/tiny-hub", "a.npy").output().unwrap());
    let served = w.hub.bytes_served(WEIGHTS_KEY);
    assert!(served < size * 16 / 10, "served {served} bytes of a {size}-byte file");
    assert!(w.hub.requests("GET", "/cdn/") >= 2, "the body was fetched again with Range: {:?}", w.hub.log());
    assert!(w.hub.log().iter().any(|r| r.range.as_deref().is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-")), "{:?}", w.hub.log());
    assert!(String::from_utf8_lossy(&out.stderr).contains("retry"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bytes_that_do_not_match_their_etag_are_refused() {
    let w = World::new("corrupt");
    w.hub.corrupt(WEIGHTS_KEY);
    let stderr = failed(w.embed("hf-hub:test/tiny-hub", "a.npy").output().unwrap());
    assert!(stderr.contains("do not match its sha256"), "{stderr}");
    assert!(stderr.contains("open_clip_model.safetensors"), "{stderr}");
    let kept: Vec<PathBuf> = w.snapshot_files().into_iter().filter(|f| f.ends_with("open_clip_model.safetensors")).collect();
    assert!(kept.is_empty(), "{kept:?}");
    assert!(!w.dir.join("a.npy").exists());
}

#[test]
fn offline_missing_repos_and_missing_files_each_say_what_is_wrong() {
    let w = World::new("errors");
    let stderr = failed(w.embed("hf-hub:test/tiny-hub", "a.npy").env("HF_HUB_OFFLINE", "1").output().unwrap());
    for needle in ["test/tiny-hub", "open_clip_config.json", "HF_HUB_OFFLINE"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(w.hub.log().is_empty());

    let stderr = failed(w.embed("hf-hub:test/no-such-model", "a.npy").output().unwrap());
    assert!(stderr.contains("test/no-such-model") && stderr.to_lowercase().contains("not found"), "{stderr}");

    // A repo with a config but no weights, and one with weights but no config.
    let weightless = w.dir.join("hub/models/test/weightless");
    std::fs::create_dir_all(&weightless).unwrap();
    std::fs::copy(fixtures().join("tiny-hub/open_clip_config.json"), weightless.join("open_clip_config.json")).unwrap();
    let stderr = failed(w.embed("hf-hub:test/weightless", "a.npy").output().unwrap());
    assert!(stderr.contains("no weights in hub repo test/weightless") && stderr.contains("open_clip_pytorch_model.bin"), "{stderr}");
    let configless = w.dir.join("hub/models/test/configless");
    std::fs::create_dir_all(&configless).unwrap();
    std::fs::copy(fixtures().join("tiny-hub/open_clip_model.safetensors"), configless.join("open_clip_model.safetensors")).unwrap();
    let stderr = failed(w.embed("hf-hub:test/configless", "a.npy").output().unwrap());
    assert!(stderr.contains("open_clip_config.json") && stderr.contains("test/configless"), "{stderr}");

    // A tag open_clip does not list names the model's tags.
    let stderr = failed(w.clip(&["embed", "--model", "ViT-B-32", "--pretrained", "no_such_tag", "--texts", "x", "--out", "y"]).output().unwrap());
    assert!(stderr.contains("no_such_tag") && stderr.contains("openai") && stderr.contains("laion2b_s34b_b79k"), "{stderr}");
    assert!(w.hub.log().iter().all(|r| !r.path.contains("ViT")), "an unknown tag makes no request");
}

#[test]
fn four_ranks_fetch_the_file_once() {
    let w = World::new("ranks");
    let images = w.dir.join("images");
    let mut command = w.clip(&["launch", "--nproc", "4", "--", "embed", "--model", "hf-hub:test/tiny-hub", "--device", "cpu"]);
    command.arg("--images").arg(&images).arg("--out").arg(w.dir.join("a.npy"));
    ok(command.output().unwrap());
    assert_eq!(w.hub.bytes_served(WEIGHTS_KEY), w.weights_size(), "{:?}", w.hub.log());
    assert_eq!(w.hub.requests("GET", "/cdn/"), 1, "{:?}", w.hub.log());
}

#[test]
fn classify_gives_open_clips_probabilities() {
    let w = World::new("classify");
    let e = expected();
    let labels: Vec<&str> = e["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let files: Vec<PathBuf> = PHOTOS.iter().map(|p| w.dir.join("images").join(p)).collect();
    let templates_file = fixtures().join("templates.txt");
    for (choice, key) in [("seed", "seed"), ("none", "none"), (templates_file.to_str().unwrap(), "file"), ("imagenet", "imagenet")] {
        let mut command = w.clip(&["classify", "--model", "hf-hub:test/tiny-hub", "--device", "cpu", "--json", "--top", "4"]);
        command.args(["--labels", &labels.join(","), "--templates", choice]).args(&files);
        let out = ok(command.output().unwrap());
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), PHOTOS.len());
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line["file"].as_str().unwrap(), files[i].display().to_string());
            let top = line["top"].as_array().unwrap();
            let probs: Vec<f64> = top.iter().map(|t| t["prob"].as_f64().unwrap()).collect();
            assert!(probs.windows(2).all(|p| p[0] >= p[1]), "highest first: {probs:?}");
            for t in top {
                let label = labels.iter().position(|l| *l == t["label"].as_str().unwrap()).unwrap();
                let theirs = e["probs"][key][i][label].as_f64().unwrap();
                assert!((t["prob"].as_f64().unwrap() - theirs).abs() <= tolerance(PHOTOS[i]), "{key} {}: {t} vs {theirs}", PHOTOS[i]);
            }
        }
    }
    // Plain output: the file, then the top labels.
    let mut command = w.clip(&["classify", "--model", "hf-hub:test/tiny-hub", "--device", "cpu", "--labels", "cat,dog", "--top", "1"]);
    let out = ok(command.arg(w.dir.join("images")).output().unwrap());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2 * PHOTOS.len(), "{text}");
    let stderr = failed(w.clip(&["classify", "--model", "hf-hub:test/tiny-hub", "--labels", "cat,,dog", "x.png"]).output().unwrap());
    assert!(stderr.contains("empty label"), "{stderr}");
}

/// A dataset in CLIP_benchmark's WebDataset layout: two unpadded shards of the photos, labels by
/// file, two class names and a template.
fn benchmark_dataset(dir: &Path, images: &Path) {
    std::fs::create_dir_all(dir.join("test")).unwrap();
    std::fs::write(dir.join("classnames.txt"), "cat\nrocket\n").unwrap();
    std::fs::write(dir.join("zeroshot_classification_templates.txt"), "a photo of a {c}.\n").unwrap();
    std::fs::write(dir.join("test/nshards.txt"), "2\n").unwrap();
    let staging = dir.join("staging");
    for (shard, photos) in [(0, [("s0000000", "chelsea.png", 0), ("s0000001", "rocket.jpg", 1)]), (1, [("s0000002", "coffee.png", 0), ("s0000003", "camera.png", 1)])] {
        std::fs::create_dir_all(&staging).unwrap();
        let mut members = Vec::new();
        for (key, photo, label) in photos {
            let ext = Path::new(photo).extension().unwrap().to_str().unwrap();
            std::fs::copy(images.join(photo), staging.join(format!("{key}.{ext}"))).unwrap();
            std::fs::write(staging.join(format!("{key}.cls")), format!("{label}")).unwrap();
            members.extend([format!("{key}.{ext}"), format!("{key}.cls")]);
        }
        let tar = dir.join(format!("test/{shard}.tar"));
        let status = Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&staging).args(&members).status().unwrap();
        assert!(status.success());
        std::fs::remove_dir_all(&staging).unwrap();
    }
}

#[test]
fn a_dataset_repo_scores_as_the_same_folder_given_locally() {
    let w = World::new("dataset");
    let repo = w.dir.join("hub/datasets/test/wds_photos");
    benchmark_dataset(&repo, &w.dir.join("images"));
    let bench = |dataset: &str, out: &str| {
        let mut command = w.clip(&["bench-zeroshot", "--model", "hf-hub:test/tiny-hub", "--device", "cpu", "--threads", "1", "--batch-size", "3"]);
        command.args(["--datasets", dataset]).arg("--out").arg(w.dir.join(out)).arg("--data-root").arg(w.dir.join("no-data"));
        ok(command.output().unwrap());
    };
    bench("hf-hub:test/wds_photos", "hub-out");
    bench(repo.to_str().unwrap(), "local-out");
    let read = |out: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(w.dir.join(out).join("results.json")).unwrap()).unwrap() };
    let (hub, local) = (read("hub-out"), read("local-out"));
    let (h, l) = (&hub["results"][0], &local["results"][0]);
    assert_eq!(h["name"], "test/wds_photos", "{hub}");
    assert_eq!(h["samples"].as_u64(), Some(4), "{hub}");
    for key in ["acc1", "mean_per_class_recall", "samples", "format"] {
        assert_eq!(h[key], l[key], "{key}: {hub} vs {local}");
    }
    // Both shards came through the cache; a second, offline run needs no request.
    let shard = std::fs::metadata(repo.join("test/1.tar")).unwrap().len();
    assert_eq!(w.hub.bytes_served("datasets/test/wds_photos/test/1.tar"), shard, "{:?}", w.hub.log());
    w.hub.reset_stats();
    let mut command = w.clip(&["bench-zeroshot", "--model", "hf-hub:test/tiny-hub", "--device", "cpu", "--offline", "--datasets", "hf-hub:test/wds_photos"]);
    ok(command.arg("--out").arg(w.dir.join("offline-out")).arg("--data-root").arg(w.dir.join("no-data")).output().unwrap());
    assert!(w.hub.log().is_empty(), "{:?}", w.hub.log());
    assert_eq!(read("offline-out")["results"][0]["acc1"], h["acc1"]);
}

#[test]
fn a_tag_resolves_to_its_hub_repo_and_pretrained_lists_it_cached() {
    let w = World::new("tag");
    // ViT-B-32:openai lives in timm/vit_base_patch32_clip_224.openai; this copy has only the
    // pickle, so the safetensors is asked for first, then the .bin.
    let repo = w.dir.join("hub/models/timm/vit_base_patch32_clip_224.openai");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("open_clip_pytorch_model.bin"), vec![7u8; 3000]).unwrap();
    let listed = |w: &World| -> serde_json::Value {
        let out = ok(w.clip(&["pretrained", "--model", "ViT-B-32", "--json"]).output().unwrap());
        let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        rows.into_iter().find(|r| r["tag"] == "openai").unwrap()
    };
    assert_eq!(listed(&w)["cached"], false);
    let out = ok(w.clip(&["pull", "ViT-B-32:openai"]).output().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ViT-B-32:openai\t") && stdout.trim_end().ends_with("open_clip_pytorch_model.bin"), "{stdout}");
    assert_eq!(w.hub.requests("HEAD", "vit_base_patch32_clip_224.openai/resolve/main/open_clip_model.safetensors"), 1);
    let row = listed(&w);
    assert_eq!((row["cached"].as_bool(), row["cached_bytes"].as_u64(), row["quick_gelu"].as_bool()), (Some(true), Some(3000), Some(true)));
    // The whole list: every pair once, with its size.
    let out = ok(w.clip(&["pretrained"]).output().unwrap());
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(lines, clip_pretrained::registry::all().len());
}

#[test]
fn fine_tuning_starts_from_a_hub_model_and_records_its_preprocessing() {
    let w = World::new("train");
    let run = w.dir.join("run");
    let mut command = w.clip(&["train", "--set", "model.preset=hf-hub:test/tiny-hub", "--set", "data.batch_size=8", "--set", "data.samples_per_epoch=32"]);
    command.args(["--set", "optim.epochs=1", "--set", "eval.tasks=[]", "--set"]).arg(format!("output={}", run.display()));
    ok(command.output().unwrap());
    assert_eq!(w.hub.bytes_served(WEIGHTS_KEY), w.weights_size());
    let checkpoint = run.join("checkpoints").join(std::fs::read_to_string(run.join("checkpoints/latest")).unwrap().trim());
    // The checkpoint folder is a model as open_clip reads one, with the weights' preprocessing.
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(checkpoint.join("open_clip_config.json")).unwrap()).unwrap();
    assert_eq!(config["preprocess_cfg"]["resize_mode"], "squash");
    assert_eq!(config["model_cfg"]["embed_dim"], 16);
    let local = format!("local-dir:{}", checkpoint.display());
    ok(w.embed(&local, "tuned.npy").env("HF_HUB_OFFLINE", "1").output().unwrap());
    // Trained weights moved away from the hub model's (same preprocessing, different features).
    ok(w.embed("hf-hub:test/tiny-hub", "base.npy").output().unwrap());
    assert_ne!(read_npy(&w.dir.join("tuned.npy")).2, read_npy(&w.dir.join("base.npy")).2);
}

/// `benchmark_dataset` with these class names (its four photos labelled 0 and 1).
fn named_benchmark_dataset(dir: &Path, images: &Path, classnames: &[String]) {
    benchmark_dataset(dir, images);
    std::fs::write(dir.join("classnames.txt"), classnames.join("\n") + "\n").unwrap();
}

#[test]
fn the_robustness_sets_resolve_from_the_hub_and_a_data_root_with_their_class_subsets() {
    let w = World::new("robustness");
    let images = w.dir.join("images");
    let registry = |name: &str| clip_eval::registry::find(name).unwrap().classnames();
    // ImageNet-R from CLIP_benchmark's repo on the hub; ImageNet-A and ObjectNet under the data root.
    named_benchmark_dataset(&w.dir.join("hub/datasets/clip-benchmark/wds_imagenet-r"), &images, &registry("imagenet-r"));
    let root = w.dir.join("data");
    named_benchmark_dataset(&root.join("imagenet-a"), &images, &registry("imagenet-a"));
    let objectnet: Vec<String> = (0..113).map(|i| format!("object {i}")).collect();
    named_benchmark_dataset(&root.join("wds_objectnet"), &images, &objectnet);
    let bench = |out: &str, datasets: &str| -> serde_json::Value {
        let mut command = w.clip(&["bench-zeroshot", "--model", "hf-hub:test/tiny-hub", "--device", "cpu", "--threads", "1", "--datasets", datasets]);
        ok(command.arg("--out").arg(w.dir.join(out)).arg("--data-root").arg(&root).output().unwrap());
        serde_json::from_str(&std::fs::read_to_string(w.dir.join(out).join("results.json")).unwrap()).unwrap()
    };
    let report = bench("out", "robustness");
    let result = |name: &str| report["results"].as_array().unwrap().iter().find(|r| r["name"] == name).cloned();
    for name in ["imagenet-r", "imagenet-a", "objectnet"] {
        let r = result(name).unwrap_or_else(|| panic!("{name} not evaluated: {report}"));
        assert_eq!((r["task"].as_str(), r["samples"].as_u64()), (Some("zeroshot_classification"), Some(4)), "{name}: {report}");
    }
    // The sets neither place has are listed, not fatal; without ImageNet there is no summary.
    let missing: Vec<&str> = report["missing"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert_eq!(missing, ["imagenet1k", "imagenetv2", "imagenet_sketch"], "{report}");
    assert!(report.get("robustness").is_none(), "{report}");
    assert!(w.hub.bytes_served("datasets/clip-benchmark/wds_imagenet-r/test/1.tar") > 0, "{:?}", w.hub.log());
    // A copy of ImageNet-A with all 1000 classes is refused: it is scored over its 200.
    named_benchmark_dataset(&root.join("imagenet-a"), &images, &registry("imagenet1k"));
    let report = bench("out-1000", "imagenet-a");
    let failed = report["failed"].to_string();
    assert!(failed.contains("1000 classes on disk, but imagenet-a has 200"), "{report}");
}

/// A `.npy` file of one little-endian f32 vector.
fn npy_vector(values: &[f32]) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", values.len());
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

#[test]
fn voc2007_from_the_hub_takes_the_one_vs_rest_probe() {
    let w = World::new("voc");
    let repo = w.dir.join("hub/datasets/clip-benchmark/wds_voc2007_multilabel");
    let classes = clip_eval::registry::find("voc2007").unwrap().classnames();
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("classnames.txt"), classes.join("\n") + "\n").unwrap();
    std::fs::write(repo.join("dataset_type.txt"), "multilabel\n").unwrap();
    // Each photo holds two classes; "cat" (7) in the two cat-like photos.
    let targets = [("chelsea.png", [7, 14]), ("rocket.jpg", [0, 18]), ("coffee.png", [7, 4]), ("camera.png", [19, 14])];
    for split in ["train", "test"] {
        let staging = w.dir.join(format!("staging-{split}"));
        std::fs::create_dir_all(&staging).unwrap();
        let mut members = Vec::new();
        for (i, (photo, positive)) in targets.iter().enumerate() {
            let key = format!("s{i:07}");
            let ext = Path::new(photo).extension().unwrap().to_str().unwrap();
            std::fs::copy(w.dir.join("images").join(photo), staging.join(format!("{key}.{ext}"))).unwrap();
            let mut vector = vec![0f32; classes.len()];
            positive.iter().for_each(|&c| vector[c] = 1.0);
            std::fs::write(staging.join(format!("{key}.npy")), npy_vector(&vector)).unwrap();
            members.extend([format!("{key}.{ext}"), format!("{key}.npy")]);
        }
        std::fs::create_dir_all(repo.join(split)).unwrap();
        std::fs::write(repo.join(split).join("nshards.txt"), "1\n").unwrap();
        let status = Command::new("tar").arg("-cf").arg(repo.join(split).join("0.tar")).arg("-C").arg(&staging).args(&members).status().unwrap();
        assert!(status.success());
    }
    let out = w.dir.join("out");
    let mut command = w.clip(&["bench-linear-probe", "--model", "hf-hub:test/tiny-hub", "--device", "cpu", "--threads", "1", "--datasets", "voc2007", "--few-shot", "0"]);
    ok(command.arg("--out").arg(&out).arg("--data-root").arg(w.dir.join("no-data")).output().unwrap());
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let r = &report["results"][0];
    assert_eq!((r["name"].as_str(), r["task"].as_str(), r["metric"].as_str()), (Some("voc2007"), Some("linear_probe"), Some("map_11point")), "{report}");
    assert_eq!(r["samples"].as_u64(), Some(4), "{report}");
    let value = r["value"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&value) && r["scores"]["mean_average_precision"].is_number(), "{report}");
    // The λ search ran the paper's plan (seven starts at least) on the held-out fifth of train.
    let probe = &r["probe"];
    assert!(probe["trials"].as_array().unwrap().len() >= 7, "{report}");
    assert_eq!((probe["train_samples"].as_u64(), probe["validation_samples"].as_u64()), (Some(3), Some(1)), "{report}");
}

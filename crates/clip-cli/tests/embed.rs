use std::path::{Path, PathBuf};
use std::process::Command;

use clip_data::{PreprocessConfig, SourceImage};
use clip_model::l2_normalize;
use clip_tokenizer::Tokenizer;
use tch::{Kind, Tensor};

use crate::support::{self, Setup, read_npy};

fn workspace(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// A tiny ViT with the real vocabulary, so that real text can be embedded.
const CONFIG: &str = r#"{"embed_dim": 16, "quick_gelu": true,
  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}"#;

fn setup(name: &str) -> Setup {
    support::setup(&format!("clip-embed-{name}"), CONFIG, 3)
}

fn embed(s: &Setup, input: &[&str], out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clip"))
        .arg("embed")
        .arg("--model-config")
        .arg(&s.config)
        .arg("--weights")
        .arg(&s.weights)
        .args(input)
        .arg("--out")
        .arg(out)
        .args(["--batch-size", "3", "--device", "cpu"])
        .output()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn texts_are_embedded_in_order_as_the_library_does() {
    let s = setup("texts");
    let lines = ["a photo of a cat", "A DOG!", "", "東京タワー &amp; more", "x y z", "the last line"];
    let texts = s.dir.join("texts.txt");
    std::fs::write(&texts, lines.join("\n")).unwrap();
    let out = s.dir.join("texts.npy");
    let output = embed(&s, &["--texts", texts.to_str().unwrap()], &out);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (rows, cols, values) = read_npy(&out);
    assert_eq!((rows, cols), (lines.len(), 16));
    let ids: Vec<i64> = Tokenizer::get().tokenize_batch(&lines, 77).unwrap().into_iter().map(i64::from).collect();
    let ids = Tensor::from_slice(&ids).view([lines.len() as i64, 77]);
    let _guard = tch::no_grad_guard();
    let expected = Vec::<f32>::try_from(l2_normalize(&s.model.encode_text(&ids)).view([-1])).unwrap();
    assert!(max_diff(&values, &expected) < 1e-6);
    std::fs::remove_dir_all(&s.dir).unwrap();
}

#[test]
fn images_in_byte_order_with_unreadable_ones_skipped() {
    let s = setup("images");
    let images = s.dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let source = workspace("clip-data/tests/fixtures/images");
    for (name, from) in [("b.png", "chelsea.png"), ("a.jpg", "rocket.jpg"), ("C.gif", "no_time_for_that_tiny.gif"), ("d.png", "camera.png")] {
        std::fs::copy(source.join(from), images.join(name)).unwrap();
    }
    std::fs::write(images.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(images.join("notes.txt"), b"not an image").unwrap();
    let out = s.dir.join("images.npy");
    let output = embed(&s, &["--images", images.to_str().unwrap()], &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("skipping") && stderr.contains("broken.png") && stderr.contains("skipped 1 of 5"), "{stderr}");
    let listed = std::fs::read_to_string(out.with_extension("files.txt")).unwrap();
    let order = ["C.gif", "a.jpg", "b.png", "d.png"]; // byte order: upper case first
    assert_eq!(listed.lines().collect::<Vec<_>>(), order);
    let (rows, cols, values) = read_npy(&out);
    assert_eq!((rows, cols), (4, 16));
    let preprocess = PreprocessConfig::openai(32);
    let pixels: Vec<f32> = order
        .iter()
        .flat_map(|f| preprocess.apply(&SourceImage::decode(&std::fs::read(images.join(f)).unwrap()).unwrap()))
        .collect();
    let batch = Tensor::from_slice(&pixels).view([4, 3, 32, 32]).to_kind(Kind::Float);
    let _guard = tch::no_grad_guard();
    let expected = Vec::<f32>::try_from(l2_normalize(&s.model.encode_image(&batch)).view([-1])).unwrap();
    assert!(max_diff(&values, &expected) < 1e-5);
    std::fs::remove_dir_all(&s.dir).unwrap();
}

#[test]
fn refuses_to_embed_without_weights_unless_asked() {
    let output = Command::new(env!("CARGO_BIN_EXE_clip"))
        .args(["embed", "--model", "ViT-B-32", "--texts", "/dev/null", "--out", "/tmp/never.npy"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--random-init"));
}

#[test]
fn a_model_with_a_small_vocabulary_refuses_text_instead_of_crashing() {
    let output = Command::new(env!("CARGO_BIN_EXE_clip"))
        .arg("embed")
        .arg("--model-config")
        .arg(workspace("clip-model/tests/fixtures/tiny-vit.json"))
        .arg("--weights")
        .arg(workspace("clip-model/tests/fixtures/tiny-vit.safetensors"))
        .args(["--texts", "/dev/null", "--out", "/tmp/never.npy", "--device", "cpu"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read text"));
}

#[test]
fn an_uncached_hugging_face_tokenizer_offline_is_a_clear_error_but_images_embed() {
    let cache = tempfile::tempdir().unwrap();
    let run = |input: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_clip"))
            .arg("embed")
            .arg("--model-config")
            .arg(workspace("clip-model/tests/fixtures/families/metaclip2.json"))
            .arg("--weights")
            .arg(workspace("clip-model/tests/fixtures/families/metaclip2.safetensors"))
            .args(input)
            .args(["--device", "cpu", "--offline"])
            .env("HF_HUB_CACHE", cache.path())
            .output()
            .unwrap()
    };
    let out = cache.path().join("out.npy");
    let texts = run(&["--texts", "/dev/null", "--out", out.to_str().unwrap()]);
    assert!(!texts.status.success());
    let stderr = String::from_utf8_lossy(&texts.stderr);
    assert!(stderr.contains("facebook/xlm-v-base") && stderr.contains("offline"), "{stderr}");
    assert!(!out.exists(), "no output after an error");
    // Images need no tokenizer: nothing is fetched for them.
    let images = workspace("clip-data/tests/fixtures/images");
    let embedded = run(&["--images", images.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(embedded.status.success(), "{}", String::from_utf8_lossy(&embedded.stderr));
    assert_eq!(read_npy(&out).1, 24);
}

/// A CoCa checkpoint as open_clip saves it, with its captioning decoder (`text_decoder.*`): the
/// decoder is set aside (not built), and the embeddings equal those of the towers alone.
#[test]
fn a_coca_checkpoint_with_its_decoder_embeds_as_its_towers_alone() {
    let dir = tempfile::tempdir().unwrap();
    let families = workspace("clip-model/tests/fixtures/families");
    let mut tensors = clip_tensor::safetensors::read_safetensors(&families.join("coca.safetensors")).unwrap();
    tensors.extend(clip_tensor::safetensors::read_safetensors(&families.join("coca.decoder.safetensors")).unwrap());
    let full = dir.path().join("coca-full.safetensors");
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    clip_tensor::safetensors::save_safetensors(&full, &named).unwrap();
    let embed = |weights: &Path, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_clip"))
            .arg("embed")
            .arg("--model-config")
            .arg(families.join("coca.json"))
            .arg("--weights")
            .arg(weights)
            .arg("--images")
            .arg(workspace("clip-data/tests/fixtures/images"))
            .arg("--out")
            .arg(out)
            .args(["--device", "cpu"])
            .output()
            .unwrap()
    };
    let (with, without) = (dir.path().join("with.npy"), dir.path().join("without.npy"));
    let output = embed(&full, &with);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(embed(&families.join("coca.safetensors"), &without).status.success());
    let (rows, cols, values) = read_npy(&with);
    assert_eq!(cols, 24);
    assert!(rows > 0);
    assert_eq!(values, read_npy(&without).2);
}

#[test]
fn bf16_autocast_stays_close_to_fp32() {
    let s = setup("bf16");
    let texts = s.dir.join("texts.txt");
    std::fs::write(&texts, "a photo of a cat\nsomething else entirely\n").unwrap();
    let (fp32, bf16) = (s.dir.join("fp32.npy"), s.dir.join("bf16.npy"));
    assert!(embed(&s, &["--texts", texts.to_str().unwrap()], &fp32).status.success());
    let output = embed(&s, &["--texts", texts.to_str().unwrap(), "--precision", "bf16"], &bf16);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (a, b) = (read_npy(&fp32).2, read_npy(&bf16).2);
    let d = max_diff(&a, &b);
    assert!(d > 0.0 && d < 5e-2, "bf16 vs fp32: {d}");
    std::fs::remove_dir_all(&s.dir).unwrap();
}

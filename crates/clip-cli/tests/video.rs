//! bench-zeroshot over UCF101 as shipped (`ucfTrainTestlist/`, `UCF-101/CLASS/*.avi`): the middle
//! frame of each clip through ffmpeg, cached so that a second run decodes nothing, the official
//! splits averaged, a corrupt or missing clip a counted skip, and a missing ffmpeg named.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use clip_data::{PreprocessConfig, SourceImage};
use clip_eval::registry::find;
use clip_eval::zeroshot::{classifier, predict};
use tch::{Device, Tensor};

use crate::support;

/// The same tiny ViT as the other bench tests.
const CONFIG: &str = r#"{"embed_dim": 16,
  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}"#;

/// An MPEG-4 Part 2 `.avi` (UCF101's container) of solid-colour runs at 10 frames/s, `(colour,
/// frames)` in order, made by ffmpeg's lavfi colour sources concatenated.
fn clip(path: &Path, runs: &[(&str, u32)]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y"]);
    for (colour, frames) in runs {
        command.args([
            "-f",
            "lavfi",
            "-i",
            &format!(
                "color=c={colour}:s=64x48:r=10:d={}",
                f64::from(*frames) / 10.0
            ),
        ]);
    }
    let inputs: String = (0..runs.len()).map(|i| format!("[{i}:v]")).collect();
    command
        .args([
            "-filter_complex",
            &format!("{inputs}concat=n={}:v=1:a=0", runs.len()),
            "-c:v",
            "mpeg4",
            "-q:v",
            "1",
            "-g",
            "1",
        ])
        .arg(path);
    let status = command.status().unwrap();
    assert!(status.success(), "ffmpeg made no {}", path.display());
}

/// `ffmpeg` and `ffprobe` scripts in `dir` that log each call to `log`, then run the real tool.
fn logging_tools(dir: &Path, log: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for tool in ["ffmpeg", "ffprobe"] {
        let real = String::from_utf8(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let script = dir.join(tool);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho {tool} \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real.trim()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn bench(s: &support::Setup, root: &Path, out: &Path, path: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clip"))
        .args(["bench-zeroshot", "--model-config"])
        .arg(&s.config)
        .arg("--weights")
        .arg(&s.weights)
        .args([
            "--device",
            "cpu",
            "--threads",
            "2",
            "--batch-size",
            "7",
            "--datasets",
            "ucf101",
            "--data-root",
        ])
        .arg(root)
        .arg("--out")
        .arg(out)
        .env("HF_HUB_OFFLINE", "1")
        .env("PATH", path)
        .output()
        .unwrap()
}

fn ucf101(out: &Path) -> serde_json::Value {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ucf101")
        .cloned()
        .unwrap_or_else(|| panic!("no ucf101 result: {report}"))
}

/// The mean colour of a PNG.
fn mean_colour(path: &Path) -> [f64; 3] {
    let image = image::open(path).unwrap().to_rgb8();
    let mut sum = [0.0; 3];
    for p in image.pixels() {
        for (total, value) in sum.iter_mut().zip(p.0) {
            *total += f64::from(value);
        }
    }
    sum.map(|s| s / f64::from(image.width() * image.height()))
}

fn near(colour: [f64; 3], expected: [f64; 3]) -> bool {
    colour
        .iter()
        .zip(expected)
        .all(|(a, b)| (a - b).abs() < 24.0)
}

#[test]
fn ucf101_videos_middle_frames_cached_splits_averaged_and_skips_counted() {
    // ffmpeg is a dependency `cargo xtask setup` installs (Debian's package): its absence fails
    // the test rather than passing it unrun.
    clip_eval::video::check_ffmpeg().expect("ffmpeg and ffprobe on PATH (`cargo xtask setup` installs Debian's ffmpeg)");
    let s = support::setup("clip-bench-video", CONFIG, 5);
    let root = s.dir.join("data");
    let set = root.join("ucf101");
    let videos = set.join("UCF-101");
    // 11 frames: the middle one (5) alone is green; 10 frames: floor(10 / 2) = 5 is the first blue.
    let makeup = "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi";
    let pushups = "HandstandPushups/v_HandStandPushups_g01_c01.avi";
    clip(
        &videos.join(makeup),
        &[("red", 5), ("green", 1), ("blue", 5)],
    );
    clip(&videos.join(pushups), &[("red", 5), ("blue", 5)]);
    let corrupt = "Archery/v_Archery_g01_c01.avi";
    std::fs::create_dir_all(videos.join("Archery")).unwrap();
    std::fs::write(
        videos.join(corrupt),
        b"RIFF\x10\0\0\0AVI LIST not a video at all",
    )
    .unwrap();
    // classInd.txt as UCF101 ships it, its class names squashed (HandstandPushups, YoYo, ...).
    let lists = set.join("ucfTrainTestlist");
    std::fs::create_dir_all(&lists).unwrap();
    let info = find("ucf101").unwrap();
    let names: Vec<String> = info
        .classnames()
        .iter()
        .map(|n| n.replace(' ', "").replace("HandStand", "Handstand"))
        .collect();
    let class_ind: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{} {n}\r\n", i + 1))
        .collect();
    std::fs::write(lists.join("classInd.txt"), class_ind).unwrap();
    std::fs::write(
        lists.join("testlist01.txt"),
        format!("{makeup}\r\n{pushups}\r\n{corrupt}\r\n"),
    )
    .unwrap();
    std::fs::write(
        lists.join("testlist02.txt"),
        format!("{makeup}\r\nBiking/v_Biking_g01_c01.avi\r\n"),
    )
    .unwrap();
    let log = s.dir.join("tools.log");
    let tools = s.dir.join("tools");
    logging_tools(&tools, &log);
    let out = s.dir.join("out");

    let first = bench(&s, &root, &out, tools.to_str().unwrap());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    // One ffprobe per clip on disk (the missing one is never probed), one ffmpeg per frame, beside
    // one `-version` check of each.
    let decoding = |tool: &str| {
        calls
            .lines()
            .filter(|l| l.starts_with(tool) && !l.ends_with(" -version"))
            .count()
    };
    assert_eq!(
        (decoding("ffprobe "), decoding("ffmpeg ")),
        (3, 2),
        "{calls}"
    );
    assert!(calls.contains("select=eq(n\\,5)"), "{calls}");
    let frames = out.join("frames/ucf101/UCF-101");
    let green = mean_colour(&frames.join(makeup).with_extension("png"));
    assert!(
        near(green, [0.0, 128.0, 0.0]),
        "the middle of 11 frames is the green one: {green:?}"
    );
    let blue = mean_colour(&frames.join(pushups).with_extension("png"));
    assert!(
        near(blue, [0.0, 0.0, 255.0]),
        "frame 5 of 10 is the first blue one: {blue:?}"
    );
    assert!(frames.join(corrupt).with_extension("skip").is_file());
    assert!(!frames.join(corrupt).with_extension("png").exists());

    // Two clips scored, the corrupt and the missing one skipped; each split's accuracy, averaged.
    let result = ucf101(&out);
    assert_eq!(
        (
            result["samples"].as_u64(),
            result["skipped"].as_u64(),
            result["format"].as_str()
        ),
        (Some(2), Some(2), Some("ucf101_videos")),
        "{result}"
    );
    let w = classifier(
        &s.model,
        &clip_tokenizer::TextTokenizer::OpenAi,
        &info.classes,
        &info.templates,
        Device::Cpu,
    )
    .unwrap();
    let correct = |path: &str, label: i64| {
        let image =
            SourceImage::decode(&std::fs::read(frames.join(path).with_extension("png")).unwrap())
                .unwrap();
        let pixels =
            Tensor::from_slice(&PreprocessConfig::openai(32).apply(&image)).view([1, 3, 32, 32]);
        let _guard = tch::no_grad_guard();
        f64::from(u8::from(
            predict(&s.model, &w, &pixels).int64_value(&[0]) == label,
        ))
    };
    let pushups_label = info
        .classnames()
        .iter()
        .position(|n| n.replace(' ', "").eq_ignore_ascii_case("HandstandPushups"))
        .unwrap() as i64;
    let (makeup_ok, pushups_ok) = (correct(makeup, 0), correct(pushups, pushups_label));
    let split1 = 100.0 * (makeup_ok + pushups_ok) / 2.0;
    let split2 = 100.0 * makeup_ok;
    let scores = &result["scores"];
    assert_eq!(
        (
            scores["testlist01_accuracy"].as_f64(),
            scores["testlist02_accuracy"].as_f64()
        ),
        (Some(split1), Some(split2)),
        "{result}"
    );
    assert!(
        (result["value"].as_f64().unwrap() - (split1 + split2) / 2.0).abs() < 1e-9,
        "{result}"
    );

    // The second run finds every frame and skip in the cache: no ffmpeg on PATH at all.
    let empty = s.dir.join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let second = bench(&s, &root, &out, empty.to_str().unwrap());
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        calls,
        "the second run called ffmpeg"
    );
    let again = ucf101(&out);
    assert_eq!(
        (
            again["value"].clone(),
            again["samples"].clone(),
            again["skipped"].clone()
        ),
        (
            result["value"].clone(),
            result["samples"].clone(),
            result["skipped"].clone()
        )
    );

    // Without the cache and without ffmpeg, the set fails with how to install it.
    std::fs::remove_dir_all(out.join("frames")).unwrap();
    let third = bench(&s, &root, &out, empty.to_str().unwrap());
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(
        stderr.contains("ffprobe not found")
            && stderr.contains("cargo xtask setup")
            && stderr.contains("apt-get install ffmpeg"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

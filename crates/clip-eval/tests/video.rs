//! Video sets as shipped: Kinetics-700's csv annotations and clips found by the downloaders' file
//! names, UCF101's lists matched to the registry's classes, and the middle frames taken through
//! ffmpeg with unreadable and missing clips counted.

use std::path::Path;
use std::process::Command;

use clip_data::SkipReason;
use clip_eval::registry::find;
use clip_eval::video::{Layout, layout, middle_frames, open};

/// A 7-frame MPEG-4 `.mp4` of one colour.
fn clip(path: &Path, colour: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &format!("color=c={colour}:s=32x32:r=7:d=1"),
            "-c:v",
            "mpeg4",
        ])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn kinetics_annotations_find_their_clips_and_missing_or_corrupt_ones_are_counted() {
    // ffmpeg is a dependency `cargo xtask setup` installs (Debian's package): its absence fails
    // the test rather than passing it unrun.
    clip_eval::video::check_ffmpeg().expect("ffmpeg and ffprobe on PATH (`cargo xtask setup` installs Debian's ffmpeg)");
    let dir = std::env::temp_dir().join(format!("clip-eval-kinetics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let info = find("kinetics700").unwrap();
    std::fs::create_dir_all(dir.join("annotations")).unwrap();
    // Kinetics-700-2020's header; a quoted label; a clip removed from YouTube; a damaged file.
    std::fs::write(
        dir.join("annotations/validate.csv"),
        "label,youtube_id,time_start,time_end,split\n\"abseiling\",aaa,3,13,validate\nacting in play,bbb,0,10,validate\nadjusting glasses,gone,5,15,validate\nabseiling,bad,1,11,validate\n",
    )
    .unwrap();
    clip(&dir.join("val/abseiling/aaa_000003_000013.mp4"), "white");
    clip(
        &dir.join("val/acting in play/bbb_000000_000010.mp4"),
        "black",
    );
    std::fs::write(
        dir.join("val/abseiling/bad_000001_000011.mp4"),
        b"\0\0\0\x18ftypmp42 truncated",
    )
    .unwrap();

    let found = layout(info, &dir).unwrap();
    assert_eq!(
        found,
        Layout::Kinetics {
            annotations: dir.join("annotations")
        }
    );
    assert!(
        open(info, &dir, &found, "train").unwrap().is_none(),
        "no train.csv"
    );
    let split = open(info, &dir, &found, "test").unwrap().unwrap();
    let labels: Vec<i64> = split.clips.iter().map(|c| c.label).collect();
    assert_eq!(labels, [0, 1, 2, 0]);
    assert_eq!(
        split.clips[0].video,
        dir.join("val/abseiling/aaa_000003_000013.mp4")
    );
    assert_eq!(split.folds, vec![("validate".to_owned(), vec![0, 1, 2, 3])]);
    assert_eq!(split.format, "kinetics_videos");

    let cache = dir.join("frames");
    let mut seen = Vec::new();
    let (frames, skipped) =
        middle_frames(&split.clips, &dir, &cache, 2, &mut |n| seen.push(n)).unwrap();
    assert_eq!(
        frames[0].as_deref(),
        Some(cache.join("val/abseiling/aaa_000003_000013.png").as_path())
    );
    assert!(
        frames[1].is_some() && frames[2].is_none() && frames[3].is_none(),
        "{frames:?}"
    );
    assert_eq!(
        (
            skipped.get(SkipReason::MissingImage),
            skipped.get(SkipReason::CorruptImage)
        ),
        (1, 1)
    );
    assert_eq!(seen.last(), Some(&4));
    let white =
        clip_data::SourceImage::decode(&std::fs::read(frames[0].as_ref().unwrap()).unwrap())
            .unwrap();
    assert!(
        (white.width, white.height) == (32, 32) && white.pixels.iter().all(|&c| c > 230),
        "the white clip's frame"
    );
    let marker =
        std::fs::read_to_string(cache.join("val/abseiling/bad_000001_000011.skip")).unwrap();
    assert!(marker.contains("ffprobe"), "{marker}");
    // A label outside the registry is an error naming it.
    std::fs::write(
        dir.join("annotations/validate.csv"),
        "label,youtube_id,time_start,time_end\nunicycling on the moon,x,0,10\n",
    )
    .unwrap();
    let error = open(info, &dir, &found, "test").unwrap_err().to_string();
    assert!(
        error.contains(
            "\"unicycling on the moon\" is not one of the registry's 700 Kinetics-700 classes"
        ),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ucf101_lists_match_the_registry_classes_and_name_strangers() {
    let dir = std::env::temp_dir().join(format!("clip-eval-ucf101-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let lists = dir.join("ucfTrainTestlist");
    std::fs::create_dir_all(&lists).unwrap();
    let info = find("ucf101").unwrap();
    assert_eq!(layout(info, &dir), None, "no classInd.txt");
    // UCF101 spells some classes differently in classInd.txt and in its clip names.
    let names: Vec<String> = info
        .classnames()
        .iter()
        .map(|n| n.replace(' ', "").replace("HandStand", "Handstand"))
        .collect();
    std::fs::write(
        lists.join("classInd.txt"),
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{} {n}\n", i + 1))
            .collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        lists.join("trainlist01.txt"),
        "YoYo/v_YoYo_g08_c01.avi 101\nHandstandPushups/v_HandStandPushups_g08_c01.avi 37\n",
    )
    .unwrap();
    std::fs::write(lists.join("testlist01.txt"), "YoYo/v_YoYo_g01_c01.avi\n").unwrap();
    std::fs::write(
        lists.join("testlist03.txt"),
        "YoYo/v_YoYo_g01_c01.avi\nArchery/v_Archery_g15_c01.avi\n",
    )
    .unwrap();
    let found = layout(info, &dir).unwrap();
    let train = open(info, &dir, &found, "train").unwrap().unwrap();
    assert_eq!(
        train.clips.iter().map(|c| c.label).collect::<Vec<_>>(),
        [100, 36]
    );
    assert_eq!(
        train.clips[0].video,
        dir.join("YoYo/v_YoYo_g08_c01.avi"),
        "no UCF-101/ folder: the clips beside the lists"
    );
    // Two test lists: the shared clip once, each fold by its indices.
    let test = open(info, &dir, &found, "test").unwrap().unwrap();
    assert_eq!(test.clips.len(), 2);
    assert_eq!(
        test.folds,
        vec![
            ("testlist01".to_owned(), vec![0]),
            ("testlist03".to_owned(), vec![0, 1])
        ]
    );
    assert!(open(info, &dir, &found, "valid").unwrap().is_none());
    std::fs::write(lists.join("classInd.txt"), "1 Juggling\n").unwrap();
    let error = open(info, &dir, &found, "test").unwrap_err().to_string();
    assert!(
        error.contains("class \"Juggling\" is not one of the registry's 101 UCF101 classes"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

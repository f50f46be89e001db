//! Video sets from their videos: the paper classifies UCF101 and Kinetics-700 by one image per
//! clip, its middle frame. A registry video set under the data root may hold the videos as the
//! datasets ship them:
//!
//! - **UCF101**: `ucfTrainTestlist/classInd.txt` (`1 ApplyEyeMakeup` …), `testlist0{1,2,3}.txt`
//!   (`ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`) and `trainlist0{1,2,3}.txt` (the same with
//!   the 1-based class index), the clips under `UCF-101/` (the archive's folder) or beside the lists'
//!   folder. Zero-shot scores each official split whose test list is present and averages them, as
//!   the paper does; the probe uses split 1 (`trainlist01`, `testlist01`).
//! - **Kinetics-700**: the csv annotations (`train.csv`, `validate.csv` or `val.csv`; header
//!   `label,youtube_id,time_start,time_end,…`) in `annotations/` or the set's folder, and the clips
//!   anywhere below it named as the downloaders name them, `{youtube_id}_{start:06}_{end:06}.mp4`
//!   (`.mkv`, `.webm` too). Its labelled evaluation split is the validation list, our `test`.
//!   A listed clip that is not on disk (removed from YouTube) is a counted skip.
//!
//! The middle frame is taken exactly: ffprobe counts the decoded frames of the first video stream
//! (`-count_frames`, `nb_read_frames` = n), and ffmpeg keeps frame `K = floor(n / 2)` (0-based,
//! counted in decode order by `-vf select=eq(n\,K)`; for even n the first frame of the second
//! half) as a PNG. Both run as subprocesses with a timeout; a clip they cannot read is a counted
//! skip (`corrupt_image`), never fatal. Frames are cached under the folder the caller names
//! (`OUT/frames/NAME/…`, one PNG per clip at the clip's path, written to a temporary name and
//! renamed), and a clip that failed leaves a `.skip` file with the reason, so a second run decodes
//! nothing; an entry older than its video is redone.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use clip_data::source::{Indexed, Payload, Record, Text};
use clip_data::{SkipCounts, SkipReason, Source};

use crate::registry::DatasetInfo;
use crate::{Error, Result};

/// How long one ffprobe or ffmpeg run may take before it is killed and its clip skipped.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// What to tell a user whose machine has no ffmpeg.
pub const INSTALL_FFMPEG: &str = "install it with `cargo xtask setup` (Debian's ffmpeg package) or `sudo apt-get install ffmpeg`";

/// Extensions of the clips a Kinetics folder may hold.
const KINETICS_EXTENSIONS: [&str; 3] = ["mp4", "mkv", "webm"];

/// How a video set is laid out on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// UCF101's `ucfTrainTestlist/` and its clips.
    Ucf101 {
        /// The folder holding `classInd.txt` and the split lists.
        lists: PathBuf,
    },
    /// Kinetics-700's csv annotations and its clips.
    Kinetics {
        /// The folder holding `train.csv`, `validate.csv` …
        annotations: PathBuf,
    },
}

/// The layout of registry set `info` in `dir`, when `dir` holds its videos as shipped.
pub fn layout(info: &DatasetInfo, dir: &Path) -> Option<Layout> {
    match info.name.as_str() {
        "ucf101" => {
            let lists = dir.join("ucfTrainTestlist");
            lists
                .join("classInd.txt")
                .is_file()
                .then_some(Layout::Ucf101 { lists })
        }
        "kinetics700" => [dir.join("annotations"), dir.to_path_buf()]
            .into_iter()
            .find(|d| {
                ["validate.csv", "val.csv", "train.csv"]
                    .iter()
                    .any(|f| d.join(f).is_file())
            })
            .map(|annotations| Layout::Kinetics { annotations }),
        _ => None,
    }
}

/// One clip and its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    /// The video file (it may be missing: a counted skip).
    pub video: PathBuf,
    /// Index into the registry's classes.
    pub label: i64,
}

/// The clips of a split, and which of them each official fold holds.
#[derive(Debug, Clone)]
pub struct VideoSplit {
    /// Every clip of the split's folds, each once.
    pub clips: Vec<Clip>,
    /// Each fold's name (`testlist01`) and its clips (indices into `clips`).
    pub folds: Vec<(String, Vec<usize>)>,
    /// The layout it was read from, for reports.
    pub format: &'static str,
}

/// Letters and digits, lower-cased: how class names from the lists meet the registry's
/// (`ApplyEyeMakeup`, `HandStandPushups` → the registry's `Apply Eye Makeup`, `Hand Stand Pushups`).
fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The registry's class index for each squashed name.
fn class_index(info: &DatasetInfo) -> HashMap<String, i64> {
    info.classes
        .iter()
        .enumerate()
        .map(|(i, names)| (squash(&names[0]), i as i64))
        .collect()
}

/// The registry's label of class `name` as `file` of `set` spells it.
fn label_of(index: &HashMap<String, i64>, name: &str, file: &Path, set: &str) -> Result<i64> {
    index.get(&squash(name)).copied().ok_or_else(|| {
        Error::Task(format!(
            "{}: class {name:?} is not one of the registry's {} {set} classes",
            file.display(),
            index.len()
        ))
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Task(format!("reading {}: {e}", path.display())))
}

/// The clips of `split` (`test`, `train`; no other) of the set laid out as `layout` in `dir`;
/// `None` when the set has no list for it.
pub fn open(
    info: &DatasetInfo,
    dir: &Path,
    layout: &Layout,
    split: &str,
) -> Result<Option<VideoSplit>> {
    match layout {
        Layout::Ucf101 { lists } => ucf101(info, dir, lists, split),
        Layout::Kinetics { annotations } => kinetics(info, dir, annotations, split),
    }
}

/// UCF101: the test lists of splits 1–3 that are present (zero-shot averages them), or split 1's
/// training list.
fn ucf101(info: &DatasetInfo, dir: &Path, lists: &Path, split: &str) -> Result<Option<VideoSplit>> {
    let index = class_index(info);
    let class_ind = lists.join("classInd.txt");
    // classInd.txt: `1 ApplyEyeMakeup`, the 1-based index the training lists use.
    let mut by_number = HashMap::new();
    let mut by_folder = HashMap::new();
    for line in read(&class_ind)?.lines().filter(|l| !l.trim().is_empty()) {
        let (number, name) = line.trim().split_once(char::is_whitespace).ok_or_else(|| {
            Error::Task(format!(
                "{}: line {line:?} is not `INDEX NAME`",
                class_ind.display()
            ))
        })?;
        let label = label_of(&index, name, &class_ind, "UCF101")?;
        by_number.insert(number.trim().to_owned(), label);
        by_folder.insert(squash(name), label);
    }
    if by_folder.len() != info.classes.len() {
        return Err(Error::Task(format!(
            "{} lists {} classes, but {} has {}",
            class_ind.display(),
            by_folder.len(),
            info.name,
            info.classes.len()
        )));
    }
    let videos = if dir.join("UCF-101").is_dir() {
        dir.join("UCF-101")
    } else {
        dir.to_path_buf()
    };
    let names: Vec<String> = match split {
        "test" => (1..=3)
            .map(|s| format!("testlist0{s}.txt"))
            .filter(|f| lists.join(f).is_file())
            .collect(),
        "train" => ["trainlist01.txt".to_owned()]
            .into_iter()
            .filter(|f| lists.join(f).is_file())
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        return Ok(None);
    }
    let mut split_out = VideoSplit {
        clips: Vec::new(),
        folds: Vec::new(),
        format: "ucf101_videos",
    };
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    for name in names {
        let path = lists.join(&name);
        let mut fold = Vec::new();
        for line in read(&path)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            // `CLASS/v_CLASS_gNN_cNN.avi` (test lists), then ` LABEL` (training lists).
            let mut parts = line.split_whitespace();
            let clip = parts.next().unwrap_or_default().replace('\\', "/");
            let label = match parts.next() {
                Some(number) => by_number.get(number).copied(),
                None => clip
                    .split('/')
                    .next()
                    .and_then(|folder| by_folder.get(&squash(folder)).copied()),
            }
            .ok_or_else(|| {
                Error::Task(format!(
                    "{}: {line:?} names no class of classInd.txt",
                    path.display()
                ))
            })?;
            let video = videos.join(&clip);
            let i = *seen.entry(video.clone()).or_insert_with(|| {
                split_out.clips.push(Clip { video, label });
                split_out.clips.len() - 1
            });
            fold.push(i);
        }
        split_out
            .folds
            .push((name.trim_end_matches(".txt").to_owned(), fold));
    }
    Ok(Some(split_out))
}

/// One csv line's fields (double quotes around a field with commas, `""` inside).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Every clip file below `dir`, by file stem.
fn clip_files(dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut out = HashMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| Error::Task(format!("listing {}: {e}", folder.display())))?;
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| KINETICS_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                out.insert(stem.to_owned(), path.clone());
            }
        }
    }
    Ok(out)
}

/// Kinetics-700: the validation list as `test`, the training list as `train`.
fn kinetics(
    info: &DatasetInfo,
    dir: &Path,
    annotations: &Path,
    split: &str,
) -> Result<Option<VideoSplit>> {
    let candidates: &[&str] = match split {
        "test" => &["validate.csv", "val.csv"],
        "train" => &["train.csv"],
        _ => &[],
    };
    let Some(csv) = candidates
        .iter()
        .map(|f| annotations.join(f))
        .find(|p| p.is_file())
    else {
        return Ok(None);
    };
    let index = class_index(info);
    let text = read(&csv)?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = csv_fields(lines.next().unwrap_or_default().trim());
    let column = |name: &str| {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            Error::Task(format!(
                "{}: no `{name}` column in its header {header:?}",
                csv.display()
            ))
        })
    };
    let (label_at, id_at, start_at, end_at) = (
        column("label")?,
        column("youtube_id")?,
        column("time_start")?,
        column("time_end")?,
    );
    let files = clip_files(dir)?;
    let mut clips = Vec::new();
    for line in lines {
        let fields = csv_fields(line.trim());
        let field = |i: usize| {
            fields.get(i).map(|f| f.trim()).ok_or_else(|| {
                Error::Task(format!(
                    "{}: line {line:?} has too few fields",
                    csv.display()
                ))
            })
        };
        let name = field(label_at)?;
        let label = label_of(&index, name, &csv, "Kinetics-700")?;
        let seconds = |i: usize| -> Result<u64> {
            let text = field(i)?;
            text.parse::<f64>().map(|s| s as u64).map_err(|_| {
                Error::Task(format!(
                    "{}: {text:?} is not a time in seconds",
                    csv.display()
                ))
            })
        };
        let stem = format!(
            "{}_{:06}_{:06}",
            field(id_at)?,
            seconds(start_at)?,
            seconds(end_at)?
        );
        // A clip not on disk keeps its expected path: reading it is a counted skip.
        let video = files
            .get(&stem)
            .cloned()
            .unwrap_or_else(|| dir.join(format!("{stem}.mp4")));
        clips.push(Clip { video, label });
    }
    let fold = (0..clips.len()).collect();
    let name = csv
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    Ok(Some(VideoSplit {
        clips,
        folds: vec![(name, fold)],
        format: "kinetics_videos",
    }))
}

/// Where clip `video` of the set in `dataset` has its frame in `cache`: the clip's path below the
/// set's folder, `.png` for the frame and `.skip` for a clip that could not be read.
fn cache_path(cache: &Path, dataset: &Path, video: &Path, extension: &str) -> PathBuf {
    let relative = video.strip_prefix(dataset).unwrap_or(video);
    let relative: PathBuf = relative
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    cache.join(relative).with_extension(extension)
}

/// Whether `entry` exists and is no older than `video`.
fn fresh(entry: &Path, video: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(entry), modified(video)) {
        (Some(e), Some(v)) => e >= v,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// What became of one clip.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Frame(PathBuf),
    Skip(SkipReason),
}

/// The middle frame of each clip (`None` where it was skipped), from `cache` or decoded into it,
/// with the skips by reason; `threads` clips are decoded at once. `progress` hears the clips done.
/// ffmpeg is needed only when some clip has no fresh cache entry; then its absence is an error
/// saying how to install it.
pub fn middle_frames(
    clips: &[Clip],
    dataset: &Path,
    cache: &Path,
    threads: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<(Vec<Option<PathBuf>>, SkipCounts)> {
    let mut outcomes: Vec<Option<Outcome>> = clips
        .iter()
        .map(|clip| cached(clip, dataset, cache))
        .collect();
    let pending: Vec<usize> = (0..clips.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();
    let mut done = clips.len() - pending.len();
    progress(done);
    if !pending.is_empty() {
        check_ffmpeg()?;
        let next = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::channel();
        std::thread::scope(|scope| -> Result<()> {
            for _ in 0..threads.clamp(1, pending.len()) {
                let (sender, next, pending) = (sender.clone(), &next, &pending);
                scope.spawn(move || {
                    while let Some(&i) = pending.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if sender.send((i, decode(&clips[i], dataset, cache))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            for (i, outcome) in receiver {
                outcomes[i] = Some(outcome?);
                done += 1;
                progress(done);
            }
            Ok(())
        })?;
    }
    let mut skipped = SkipCounts::default();
    let frames = outcomes
        .into_iter()
        .map(|o| match o {
            Some(Outcome::Frame(png)) => Some(png),
            Some(Outcome::Skip(reason)) => {
                skipped.add(reason);
                None
            }
            None => unreachable!("every clip was looked up or decoded"),
        })
        .collect();
    Ok((frames, skipped))
}

/// The cached outcome of `clip`, if fresh: its frame, or the skip recorded for it. A missing video
/// is a skip without a cache entry.
fn cached(clip: &Clip, dataset: &Path, cache: &Path) -> Option<Outcome> {
    if !clip.video.is_file() {
        return Some(Outcome::Skip(SkipReason::MissingImage));
    }
    let png = cache_path(cache, dataset, &clip.video, "png");
    if fresh(&png, &clip.video) {
        return Some(Outcome::Frame(png));
    }
    fresh(
        &cache_path(cache, dataset, &clip.video, "skip"),
        &clip.video,
    )
    .then_some(Outcome::Skip(SkipReason::CorruptImage))
}

/// Whether ffprobe and ffmpeg run; an error saying how to install them if not.
pub fn check_ffmpeg() -> Result<()> {
    ["ffprobe", "ffmpeg"].into_iter().try_for_each(check_tool)
}

/// Whether `tool` runs; an error saying how to install ffmpeg if it is not found.
fn check_tool(tool: &str) -> Result<()> {
    match Command::new(tool)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(Error::Task(format!(
            "`{tool} -version` failed ({status}); the middle frames of video sets need ffmpeg: {INSTALL_FFMPEG}"
        ))),
        Err(e) => Err(Error::Task(format!(
            "{tool} not found ({e}); the middle frames of video sets need ffmpeg: {INSTALL_FFMPEG}"
        ))),
    }
}

/// Decodes `clip`'s middle frame into the cache, or records why it could not be. Only a cache
/// that cannot be written is an error.
fn decode(clip: &Clip, dataset: &Path, cache: &Path) -> Result<Outcome> {
    let png = cache_path(cache, dataset, &clip.video, "png");
    let marker = cache_path(cache, dataset, &clip.video, "skip");
    let folder = png.parent().unwrap_or(cache);
    std::fs::create_dir_all(folder)
        .map_err(|e| Error::Task(format!("creating {}: {e}", folder.display())))?;
    let partial = png.with_extension(format!("png.partial-{}", std::process::id()));
    match middle_frame(&clip.video, &partial) {
        Ok(()) => {
            std::fs::rename(&partial, &png)
                .map_err(|e| Error::Task(format!("writing {}: {e}", png.display())))?;
            let _ = std::fs::remove_file(&marker);
            Ok(Outcome::Frame(png))
        }
        Err(why) => {
            let _ = std::fs::remove_file(&partial);
            let staged = marker.with_extension(format!("skip.partial-{}", std::process::id()));
            std::fs::write(&staged, format!("{}: {why}\n", clip.video.display()))
                .and_then(|()| std::fs::rename(&staged, &marker))
                .map_err(|e| Error::Task(format!("writing {}: {e}", marker.display())))?;
            Ok(Outcome::Skip(SkipReason::CorruptImage))
        }
    }
}

/// Writes frame `floor(n / 2)` of `video`'s first video stream to `out` as a PNG, n counted by
/// ffprobe; the reason it could not otherwise.
fn middle_frame(video: &Path, out: &Path) -> std::result::Result<(), String> {
    let probe = run_tool(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-count_frames",
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "default=noprint_wrappers=1:nokey=1",
            ])
            .arg(video),
    )?;
    let count = probe
        .lines()
        .find_map(|l| l.trim().parse::<u64>().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("ffprobe counted no video frames ({:?})", probe.trim()))?;
    let middle = count / 2;
    run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-threads", "1", "-i"])
            .arg(video)
            .args([
                "-map",
                "0:v:0",
                "-vf",
                &format!("select=eq(n\\,{middle})"),
                "-vsync",
                "passthrough",
                "-frames:v",
                "1",
                "-f",
                "image2",
                "-update",
                "1",
                "-c:v",
                "png",
                "-y",
            ])
            .arg(out),
    )?;
    let mut magic = [0u8; 8];
    let written = std::fs::File::open(out).and_then(|mut f| f.read_exact(&mut magic));
    match written {
        Ok(()) if magic == *b"\x89PNG\r\n\x1a\n" => Ok(()),
        _ => Err(format!("ffmpeg wrote no frame {middle} of {count}")),
    }
}

/// Runs `command` with no input, at most [`TOOL_TIMEOUT`]; its standard output, or why it failed
/// (its last error lines).
fn run_tool(command: &mut Command) -> std::result::Result<String, String> {
    let name = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    // Both pipes are drained on their own threads, so a chatty tool never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < TOOL_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{name} ran past {} s and was stopped",
                    TOOL_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("{name}: {e}")),
        }
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    if status.success() {
        Ok(stdout)
    } else {
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        Err(format!(
            "{name} failed ({status}): {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ))
    }
}

/// Image files with their labels, as an indexed source: the middle frames of a video split that
/// were taken, or ObjectNet's class folders.
#[derive(Debug, Clone)]
pub struct FrameSource {
    frames: Vec<(PathBuf, i64)>,
}

impl FrameSource {
    /// The source over `frames` (PNG, label).
    pub fn new(frames: Vec<(PathBuf, i64)>) -> Self {
        Self { frames }
    }

    /// As a loader source.
    pub fn into_source(self) -> Source {
        Source::Indexed(Arc::new(self))
    }
}

impl Indexed for FrameSource {
    fn len(&self) -> u64 {
        self.frames.len() as u64
    }

    fn record(&self, _epoch: u64, index: u64) -> Record {
        let (path, label) = &self.frames[index as usize];
        Record {
            key: path.display().to_string(),
            payload: Payload::File(path.clone()),
            text: Text::Label(*label),
            json: None,
        }
    }
}

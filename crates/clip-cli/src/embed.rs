//! `clip embed --images DIR` / `--texts FILE`: L2-normalised image or text embeddings as a
//! float32 `.npy` (open_clip's `encode_image` / `encode_text(normalize=True)`). A whole collection
//! in parts is `--source` (`embed_source`).
//!
//! Images are every image file directly in the folder, in byte order of file name; one that
//! cannot be read is skipped with a warning, and `OUT.files.txt` lists, row by row, the files
//! that were embedded. Texts are one per line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clip_data::PreprocessConfig;
use clip_model::ClipModel;
use clip_rs::Tower;
use clip_tensor::device::DeviceSpec;
use clip_tensor::precision::Precision;
use clip_tokenizer::TextTokenizer;
use rayon::prelude::*;
use tch::{Device, Tensor};

use crate::model::ModelSpec;
use crate::progress::{Bar, Unit};
use crate::npy;

/// What to embed.
pub(crate) enum Input {
    Images(PathBuf),
    Texts(PathBuf),
}

/// How to run the model over inputs (`clip embed`, `clip classify`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 64)]
    pub(crate) batch_size: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub(crate) device: DeviceSpec,
    /// fp32, or bf16/fp16 autocast.
    #[arg(long, default_value = "fp32")]
    pub(crate) precision: Precision,
}

/// `clip embed`'s options.
pub(crate) struct Options {
    pub(crate) spec: ModelSpec,
    pub(crate) random_init: bool,
    pub(crate) input: Input,
    pub(crate) out: PathBuf,
    pub(crate) run: RunArgs,
}

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif"];

pub(crate) fn run(options: &Options) -> Result<()> {
    if options.run.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = options.run.device.resolve()?;
    let loaded = options.spec.load(device, options.random_init, "clip embed")?;
    let model = &loaded.model;
    let _guard = tch::no_grad_guard();
    let encode = Encoder { model, device, precision: options.run.precision };
    let (rows, names) = match &options.input {
        Input::Texts(path) => {
            let tokenizer = options.spec.tokenizer(&loaded, "clip embed")?;
            (embed_texts(&encode, &tokenizer, path, options.run.batch_size)?, None)
        }
        Input::Images(dir) => {
            let (rows, names) = embed_images(&encode, &loaded.preprocess, dir, options.run.batch_size)?;
            (rows, Some(names))
        }
    };
    let dim = model.config.embed_dim as usize;
    let count = rows.len() / dim;
    npy::write_f32(&options.out, &rows, count, dim)?;
    if let Some(names) = names {
        let list = options.out.with_extension("files.txt");
        clip_tensor::atomic::atomic_write(&list, |w| w.write_all(names.join("\n").as_bytes()))
            .with_context(|| format!("writing {}", list.display()))?;
    }
    crate::progress::note(&format!("clip embed: wrote {count} x {dim} to {}", options.out.display()));
    Ok(())
}

/// The model on its device, run at the requested precision (autocast for bf16/fp16).
pub(crate) struct Encoder<'a> {
    pub(crate) model: &'a ClipModel,
    pub(crate) device: Device,
    pub(crate) precision: Precision,
}

impl Encoder<'_> {
    /// Normalised image rows of `files` (decoded on the rayon pool), and the files they are of:
    /// a file that cannot be read is skipped with a warning.
    pub(crate) fn images<'p>(&self, preprocess: &PreprocessConfig, files: &'p [PathBuf], batch_size: usize, who: &str) -> Result<(Vec<f32>, Vec<&'p PathBuf>)> {
        let size = preprocess.image_size;
        let mut progress = Bar::new(format!("{who}: embedding images"), Some(files.len() as u64), Unit::Count("images"));
        let (mut rows, mut kept, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in files.chunks(batch_size) {
            let decoded: Vec<(&PathBuf, Result<Vec<f32>, String>)> = chunk
                .par_iter()
                .map(|path| {
                    let pixels = clip_rs::read_image(path).map(|image| preprocess.apply(&image)).map_err(|e| e.to_string());
                    (path, pixels)
                })
                .collect();
            let mut batch = Vec::new();
            for (path, pixels) in decoded {
                match pixels {
                    Ok(p) => {
                        batch.extend(p);
                        kept.push(path);
                    }
                    Err(reason) => {
                        progress.warn(&format!("{who}: warning: skipping {}: {reason}", path.display()));
                        skipped.push(path.display().to_string());
                    }
                }
            }
            let n = batch.len() / (3 * size as usize * size as usize);
            if n > 0 {
                let images = Tensor::from_slice(&batch).view([n as i64, 3, i64::from(size), i64::from(size)]);
                rows.extend(self.rows(&images, true)?);
            }
            progress.inc(chunk.len() as u64);
        }
        progress.finish();
        if !skipped.is_empty() {
            eprintln!("{who}: skipped {} of {} files that could not be read: {}", skipped.len(), files.len(), skipped.join(", "));
        }
        Ok((rows, kept))
    }

    /// Normalised rows, as float32 on the CPU.
    fn rows(&self, input: &Tensor, image: bool) -> Result<Vec<f32>> {
        Ok(Vec::<f32>::try_from(self.features(input, image)?.view([-1]))?)
    }

    /// Normalised features of images (`[B, 3, S, S]`) or token ids (`[B, context]`), `[B, dim]`
    /// contiguous float32 on the CPU.
    pub(crate) fn features(&self, input: &Tensor, image: bool) -> Result<Tensor> {
        let tower = if image { Tower::Image } else { Tower::Text };
        Ok(clip_rs::features(self.model, input, tower, self.device, self.precision)?)
    }
}

fn embed_texts(encode: &Encoder<'_>, tokenizer: &TextTokenizer, path: &Path, batch_size: usize) -> Result<Vec<f32>> {
    let model = encode.model;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let mut progress = Bar::new("clip embed: embedding texts", Some(lines.len() as u64), Unit::Count("texts"));
    let mut rows = Vec::with_capacity(lines.len() * model.config.embed_dim as usize);
    for chunk in lines.chunks(batch_size) {
        let ids = clip_eval::zeroshot::token_ids(model, tokenizer, chunk, Device::Cpu)?;
        rows.extend(encode.rows(&ids, false)?);
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    Ok(rows)
}

/// Every image file directly in `dir`, in byte order of file name (not locale order).
pub(crate) fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading folder {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| p.extension().is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())))
        .collect();
    files.sort_by(|a, b| a.file_name().map(|n| n.as_encoded_bytes().to_vec()).cmp(&b.file_name().map(|n| n.as_encoded_bytes().to_vec())));
    Ok(files)
}

fn embed_images(encode: &Encoder<'_>, preprocess: &PreprocessConfig, dir: &Path, batch_size: usize) -> Result<(Vec<f32>, Vec<String>)> {
    let files = image_files(dir)?;
    let (rows, kept) = encode.images(preprocess, &files, batch_size, "clip embed")?;
    if kept.is_empty() {
        bail!("no readable image in {}", dir.display());
    }
    let names = kept.iter().map(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    Ok((rows, names))
}

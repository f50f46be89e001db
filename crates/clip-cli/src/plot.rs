//! `clip plot RUN… [--out FILE]`, and the curves `clip train` redraws: a run folder's
//! `metrics.jsonl` drawn by clip-charts as `curves.png` (several runs overlaid into one file).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clip_charts::RunCurves;

/// The curves of the run in `dir`, named by the folder.
fn read_run(dir: &Path) -> Result<RunCurves> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {} (is {} a run folder?)", path.display(), dir.display()))?;
    let name = dir.canonicalize().ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    RunCurves::from_metrics(&name.unwrap_or_else(|| dir.display().to_string()), &text).with_context(|| format!("reading {}", path.display()))
}

fn write(runs: &[RunCurves], out: &Path) -> Result<()> {
    let png = clip_charts::curves(runs).context("drawing the curves")?;
    clip_tensor::atomic::atomic_write(out, |f| f.write_all(&png)).with_context(|| format!("writing {}", out.display()))
}

/// Redraws `RUN/curves.png` from `RUN/metrics.jsonl`; returns its path.
pub(crate) fn redraw(run: &Path) -> Result<PathBuf> {
    let out = run.join("curves.png");
    write(&[read_run(run)?], &out)?;
    Ok(out)
}

/// `clip plot`: prints the path written.
pub(crate) fn run(runs: &[PathBuf], out: Option<&Path>) -> Result<()> {
    let out = match (runs, out) {
        (_, Some(out)) => out.to_path_buf(),
        ([one], None) => one.join("curves.png"),
        _ => bail!("{} runs overlaid make one chart: give --out FILE.png", runs.len()),
    };
    let curves = runs.iter().map(|r| read_run(r)).collect::<Result<Vec<_>>>()?;
    write(&curves, &out)?;
    println!("{}", out.display());
    Ok(())
}

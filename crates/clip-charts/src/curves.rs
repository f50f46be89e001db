//! A training run's curves: four panels (loss raw and smoothed, learning rate, `logit_scale`,
//! zero-shot top-1 per task) over steps, several runs overlaid in one colour each.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::style::{FAMILY, colour, draw_err, font, lighter, padded, png, tick};
use crate::{Error, Result};

/// Width and height of `curves.png`.
pub const CURVES_SIZE: (u32, u32) = (1400, 900);

/// The smoothing of the loss: an exponential moving average with this weight, debiased at the
/// start (as TensorBoard's slider does).
const SMOOTHING: f64 = 0.9;

/// What a run's `metrics.jsonl` holds, as series over steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunCurves {
    /// Shown in legends when several runs are overlaid (the run folder's name).
    pub name: String,
    /// (step, loss); non-finite losses (skipped steps) are kept here and left out of the chart.
    pub loss: Vec<(u64, f64)>,
    /// (step, learning rate).
    pub lr: Vec<(u64, f64)>,
    /// (step, `logit_scale.exp()`).
    pub logit_scale: Vec<(u64, f64)>,
    /// Task → (step, top-1 as a fraction).
    pub top1: BTreeMap<String, Vec<(u64, f64)>>,
}

impl RunCurves {
    /// Reads the lines of a `metrics.jsonl`: step lines (`loss`, `lr`, `logit_scale`), evaluation
    /// lines (`top1`: task → fraction); other lines (the end line) are passed over. A last line
    /// without its newline (a run killed mid-write) is ignored; any other bad line is an error.
    pub fn from_metrics(name: &str, text: &str) -> Result<Self> {
        let mut run = Self { name: name.to_owned(), ..Self::default() };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) if i + 1 == lines.len() && !line.ends_with('\n') => break,
                Err(e) => return Err(Error::Metrics { line: i + 1, message: e.to_string() }),
            };
            let Some(step) = value.get("step").and_then(serde_json::Value::as_u64) else { continue };
            let number = |key: &str| value.get(key).and_then(serde_json::Value::as_f64);
            if let Some(top1) = value.get("top1").and_then(serde_json::Value::as_object) {
                for (task, acc) in top1 {
                    if let Some(acc) = acc.as_f64() {
                        run.top1.entry(task.clone()).or_default().push((step, acc));
                    }
                }
            } else if value.get("end").is_none() {
                // A skipped step's loss is NaN, which JSON writes as null.
                run.loss.push((step, number("loss").unwrap_or(f64::NAN)));
                if let Some(lr) = number("lr") {
                    run.lr.push((step, lr));
                }
                if let Some(scale) = number("logit_scale") {
                    run.logit_scale.push((step, scale));
                }
            }
        }
        Ok(run)
    }
}

/// One named line of a panel.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    width: u32,
}

fn finite(points: &[(u64, f64)]) -> Vec<(f64, f64)> {
    points.iter().filter(|p| p.1.is_finite()).map(|&(s, v)| (s as f64, v)).collect()
}

/// The debiased exponential moving average of `points`.
fn smoothed(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let (mut average, mut weight) = (0.0, 0.0);
    points
        .iter()
        .map(|&(x, v)| {
            average = average * SMOOTHING + (1.0 - SMOOTHING) * v;
            weight = weight * SMOOTHING + (1.0 - SMOOTHING);
            (x, average / weight)
        })
        .collect()
}

/// Draws `runs` overlaid as one PNG of [`CURVES_SIZE`]; each run's name labels its lines when
/// there are several.
pub fn curves(runs: &[RunCurves]) -> Result<Vec<u8>> {
    font()?;
    let (width, height) = CURVES_SIZE;
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let title = match runs {
            [one] => format!("Training run: {}", one.name),
            _ => format!("Training runs: {}", runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")),
        };
        let root = root.titled(&title, (FAMILY, 28)).map_err(draw_err)?;
        let panels = root.split_evenly((2, 2));
        let several = runs.len() > 1;
        let prefix = |run: &RunCurves, what: &str| if several { format!("{}: {what}", run.name) } else { what.to_owned() };
        let steps = runs.iter().flat_map(|r| r.loss.iter().chain(&r.lr).chain(r.top1.values().flatten()).map(|p| p.0 as f64));
        let x = padded(steps);
        let x = (x.0.max(0.0), x.1);

        let mut loss = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            let raw = finite(&run.loss);
            let smooth = smoothed(&raw);
            loss.push(Line { name: prefix(run, "loss"), points: raw, colour: lighter(colour(i), 0.6), width: 1 });
            loss.push(Line { name: prefix(run, &format!("loss, smoothed (EMA {SMOOTHING})")), points: smooth, colour: colour(i), width: 3 });
        }
        panel(&panels[0], "Contrastive loss", "loss (nats)", x, &loss)?;

        let lr: Vec<Line> = runs
            .iter()
            .enumerate()
            .map(|(i, run)| Line { name: prefix(run, "learning rate"), points: finite(&run.lr), colour: colour(i), width: 2 })
            .collect();
        panel(&panels[1], "Learning rate (schedule)", "learning rate", x, &lr)?;

        let scale: Vec<Line> = runs
            .iter()
            .enumerate()
            .map(|(i, run)| Line { name: prefix(run, "exp(logit_scale)"), points: finite(&run.logit_scale), colour: colour(i), width: 2 })
            .collect();
        panel(&panels[2], "Logit scale (1 / temperature)", "exp(logit_scale)", x, &scale)?;

        let mut eval = Vec::new();
        let mut k = 0;
        for run in runs {
            for (task, points) in &run.top1 {
                let percent: Vec<(u64, f64)> = points.iter().map(|&(s, a)| (s, 100.0 * a)).collect();
                eval.push(Line { name: prefix(run, task), points: finite(&percent), colour: colour(k), width: 2 });
                k += 1;
            }
        }
        panel(&panels[3], "Zero-shot top-1 by task", "top-1 accuracy (%)", x, &eval)?;
        root.present().map_err(draw_err)?;
    }
    png(buffer, width, height)
}

/// One panel: a caption, labelled axes with valued ticks, the lines and their legend. A panel
/// with nothing to show says so.
fn panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, title: &str, y_desc: &str, x: (f64, f64), lines: &[Line]) -> Result<()> {
    let has_data = lines.iter().any(|l| !l.points.is_empty());
    let y = padded(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let caption = if has_data { title.to_owned() } else { format!("{title}: nothing logged yet") };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(84)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(y_desc)
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .max_light_lines(2)
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()
        .map_err(draw_err)?;
    if !has_data {
        return Ok(());
    }
    for line in lines.iter().filter(|l| !l.points.is_empty()) {
        let style = ShapeStyle::from(line.colour).stroke_width(line.width);
        let colour = line.colour;
        // A single point (one evaluation) would draw no line: mark every point of short series.
        if line.points.len() < 16 {
            chart.draw_series(line.points.iter().map(|&p| Circle::new(p, 3, colour.filled()))).map_err(draw_err)?;
        }
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), style))
            .map_err(draw_err)?
            .label(&line.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ShapeStyle::from(colour).stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

//! Benchmark scores per dataset as horizontal bars, ours beside the paper's where it has one.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Result;
use crate::style::{FAMILY, colour, draw_err, font, png};

/// Width of `results.png`; its height grows with the number of datasets.
pub const RESULTS_WIDTH: u32 = 1100;

/// One dataset's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultBar {
    /// Dataset (and metric) as the axis shows it.
    pub label: String,
    /// Our score, percent.
    pub ours: f64,
    /// The paper's score for this model, percent, where it reports one.
    pub paper: Option<f64>,
}

/// Height of `results.png` for `rows` datasets.
pub fn results_height(rows: usize) -> u32 {
    (240 + 64 * rows as u32).max(320)
}

/// Draws `rows` under `title` as one PNG, [`RESULTS_WIDTH`] wide and [`results_height`] high;
/// `paper` names the paper's bars in the legend (`the paper (Table 11)`).
pub fn results(title: &str, paper: &str, rows: &[ResultBar]) -> Result<Vec<u8>> {
    font()?;
    // The y axis points up: the first dataset goes on top.
    let rows: Vec<&ResultBar> = rows.iter().rev().collect();
    let (width, height) = (RESULTS_WIDTH, results_height(rows.len()));
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        // One slot on the y axis per bar: ours, then the paper's where it has a number.
        let mut slots: Vec<(String, f64, bool)> = Vec::new();
        for r in &rows {
            if let Some(p) = r.paper {
                slots.push((String::new(), p, true));
            }
            slots.push((r.label.clone(), r.ours, false));
        }
        let top = slots.iter().map(|s| s.1).filter(|v| v.is_finite()).fold(100.0f64, f64::max);
        let label_width = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(8).clamp(8, 40) as u32 * 9 + 24;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 24))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(label_width)
            // plotters' integer ranges include their end: slots 0..len, and one more on top for the legend.
            .build_cartesian_2d(0f64..top * 1.12, (0..slots.len() as i32).into_segmented())
            .map_err(draw_err)?;
        let labels: Vec<String> = slots.iter().map(|s| s.0.clone()).collect();
        chart
            .configure_mesh()
            .x_desc("score (%)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_labels(slots.len() + 1)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .disable_y_mesh()
            .max_light_lines(1)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()
            .map_err(draw_err)?;
        let paper_label = paper;
        let (ours, paper) = (colour(0), RGBColor(150, 150, 150));
        let bar = |k: usize, value: f64, colour: RGBColor, is_paper: bool| {
            let mut rect = Rectangle::new([(0.0, SegmentValue::Exact(k as i32)), (value.max(0.0), SegmentValue::Exact(k as i32 + 1))], colour.filled());
            // Our bar and the paper's beneath it touch; datasets are kept apart.
            let (top, bottom) = if is_paper { (0, 8) } else { (8, 0) };
            rect.set_margin(top, bottom, 0, 0);
            rect
        };
        chart
            .draw_series(slots.iter().enumerate().filter(|s| !s.1.2).map(|(k, s)| bar(k, s.1, ours, false)))
            .map_err(draw_err)?
            .label("clip-rs (ours)")
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], ours.filled()));
        if slots.iter().any(|s| s.2) {
            chart
                .draw_series(slots.iter().enumerate().filter(|s| s.1.2).map(|(k, s)| bar(k, s.1, paper, true)))
                .map_err(draw_err)?
                .label(paper_label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], paper.filled()));
        }
        // Each bar's value at its end.
        let value_style = TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(slots.iter().enumerate().map(|(k, s)| {
                Text::new(format!("{:.1}", s.1), (s.1.max(0.0) + top * 0.01, SegmentValue::CenterOf(k as i32)), value_style.clone())
            }))
            .map_err(draw_err)?;
        chart
            .configure_series_labels()
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    png(buffer, width, height)
}

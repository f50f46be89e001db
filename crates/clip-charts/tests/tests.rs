//! clip-charts draws readable, non-blank PNGs of the documented sizes.

use clip_charts::{ResultBar, RunCurves, curves, results};

/// Writes `png` to `$CLIP_CHARTS_DUMP/name` when that is set (to look at the charts by eye).
fn dump(name: &str, png: &[u8]) {
    if let Some(dir) = std::env::var_os("CLIP_CHARTS_DUMP") {
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

/// Width, height, the share of pixels in colour (not white, grey or black: lines and bars, not
/// text or grid), and the number of distinct colours.
fn decode(png: &[u8]) -> (u32, u32, f64, usize) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png).unwrap().to_rgb8();
    let inked = image.pixels().filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 40).count();
    let colours: std::collections::HashSet<[u8; 3]> = image.pixels().map(|p| p.0).collect();
    (image.width(), image.height(), inked as f64 / f64::from(image.width() * image.height()), colours.len())
}

fn metrics() -> String {
    let mut text = String::new();
    for step in 1..=40u64 {
        let loss = if step == 7 { "null".to_owned() } else { format!("{}", 2.8 - 0.04 * step as f64) };
        text.push_str(&format!(
            "{{\"step\":{step},\"total_steps\":40,\"epoch\":0,\"loss\":{loss},\"lr\":{},\"logit_scale\":{},\"samples_per_s\":100.0,\"skipped\":0,\"nonfinite_steps\":0,\"skipped_step\":{}}}\n",
            1e-3 * (step as f64 / 40.0),
            14.29 + 0.01 * step as f64,
            step == 7
        ));
        if step % 20 == 0 {
            text.push_str(&format!("{{\"step\":{step},\"top1\":{{\"colour\":{},\"shape\":0.5}}}}\n", 0.2 + 0.01 * step as f64));
        }
    }
    text.push_str("{\"step\":40,\"end\":true,\"skipped\":0}\n");
    text
}

#[test]
fn metrics_are_read_into_series() {
    let run = RunCurves::from_metrics("a", &metrics()).unwrap();
    assert_eq!((run.loss.len(), run.lr.len(), run.logit_scale.len()), (40, 40, 40));
    assert!(run.loss[6].1.is_nan(), "a skipped step's null loss");
    assert_eq!(run.top1["colour"], vec![(20, 0.4), (40, 0.6000000000000001)]);
    assert_eq!(run.top1["shape"].len(), 2);
    // A torn last line (killed mid-write) is ignored; a bad line elsewhere is an error.
    let torn = format!("{}{{\"step\":41,\"lo", metrics());
    assert_eq!(RunCurves::from_metrics("a", &torn).unwrap().loss.len(), 40);
    let bad = format!("{{oops\n{}", metrics());
    assert!(RunCurves::from_metrics("a", &bad).unwrap_err().to_string().contains("line 1"));
}

#[test]
fn curves_are_drawn_for_one_and_several_runs() {
    let a = RunCurves::from_metrics("a", &metrics()).unwrap();
    let one = curves(std::slice::from_ref(&a)).unwrap();
    dump("curves-one.png", &one);
    let (w, h, inked, colours) = decode(&one);
    assert_eq!((w, h), clip_charts::CURVES_SIZE);
    assert!(inked > 0.005 && inked < 0.3, "coloured share {inked}");
    assert!(colours > 20, "{colours} colours: lines, text anti-aliasing and grid");
    let mut b = a.clone();
    b.name = "b".into();
    b.loss.iter_mut().for_each(|p| p.1 += 0.3);
    let two = curves(&[a.clone(), b]).unwrap();
    dump("curves-two.png", &two);
    let (_, _, both, _) = decode(&two);
    assert!(both > inked, "a second run adds ink: {both} vs {inked}");
    // Nothing logged yet still draws labelled, empty panels.
    let empty = curves(&[RunCurves { name: "new".into(), ..Default::default() }]).unwrap();
    dump("curves-empty.png", &empty);
    let (_, _, empty, _) = decode(&empty);
    assert_eq!(empty, 0.0, "no line drawn where nothing was logged");
}

#[test]
fn results_are_drawn_beside_the_paper() {
    let rows = [
        ResultBar { label: "cifar10 (accuracy)".into(), ours: 91.3, paper: Some(95.6) },
        ResultBar { label: "builtin/colour (accuracy)".into(), ours: 40.0, paper: None },
    ];
    let png = results("Zero-shot: ViT-B-32 openai", "paper (Table 11)", &rows).unwrap();
    dump("results.png", &png);
    let (w, h, inked, _) = decode(&png);
    assert_eq!((w, h), (clip_charts::RESULTS_WIDTH, clip_charts::results_height(2)));
    assert!(inked > 0.05 && inked < 0.7, "{inked}");
    // The grey paper bar is there too (grey is not counted above).
    let image = image::load_from_memory(&png).unwrap().to_rgb8();
    assert!(image.pixels().filter(|p| p.0 == [150, 150, 150]).count() > 5000);
    // Drawn bars in our colour: the longer one spans about 91% of the axis.
    let image = image::load_from_memory(&results("t", "paper", &rows[..1]).unwrap()).unwrap().to_rgb8();
    let ours = image.pixels().filter(|p| p.0 == [31, 119, 180]).count();
    assert!(ours > 5000, "{ours} pixels of our bar");
}

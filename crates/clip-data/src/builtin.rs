//! The built-in dataset: procedurally rendered scenes — shapes of several colours, sizes, counts
//! and positions on varied backgrounds — with varied natural captions. Unlimited, offline, and
//! deterministic: sample `i` of seed `s` is always the same, whatever the thread or the order it is
//! drawn in. It is small enough for a tiny CLIP to learn in minutes on a CPU, and defines held-out
//! classification tasks (shape, colour, count, position) to evaluate zero-shot transfer on.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::preprocess::{ImageMode, SourceImage};
use crate::rng::stream;

/// Shape names, in class order.
pub const SHAPES: [&str; 6] = ["circle", "square", "triangle", "star", "cross", "diamond"];
const SHAPE_PLURALS: [&str; 6] = ["circles", "squares", "triangles", "stars", "crosses", "diamonds"];
/// Colour names, in class order, and their RGB.
pub const COLOURS: [(&str, [u8; 3]); 8] = [
    ("red", [220, 40, 40]),
    ("green", [40, 170, 60]),
    ("blue", [40, 80, 220]),
    ("yellow", [235, 210, 40]),
    ("purple", [140, 60, 180]),
    ("orange", [240, 140, 30]),
    ("white", [245, 245, 245]),
    ("black", [25, 25, 25]),
];
/// Count words, for one to four objects.
pub const COUNTS: [&str; 4] = ["one", "two", "three", "four"];
/// Where a single object sits, as captions say it.
pub const POSITIONS: [&str; 5] = ["on the left", "on the right", "at the top", "at the bottom", "in the middle"];

/// What a scene shows; captions and task labels are derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneLabels {
    /// Index into [`SHAPES`].
    pub shape: usize,
    /// Index into [`COLOURS`].
    pub colour: usize,
    /// Number of objects, 1 to 4.
    pub count: usize,
    /// Index into [`POSITIONS`], for single-object scenes.
    pub position: Option<usize>,
    /// Large rather than small (single-object scenes).
    pub large: bool,
}

impl SceneLabels {
    /// A scene of `count` objects with random shape, colour, and (alone) position and size.
    fn draw(count: usize, rng: &mut ChaCha8Rng) -> Self {
        Self {
            shape: rng.random_range(0..SHAPES.len()),
            colour: rng.random_range(0..COLOURS.len()),
            count,
            position: (count == 1).then(|| rng.random_range(0..POSITIONS.len())),
            large: count == 1 && rng.random_bool(0.5),
        }
    }
}

/// One rendered image with its caption.
#[derive(Debug, Clone)]
pub struct Sample {
    /// An RGB image, `size × size`.
    pub image: SourceImage,
    /// A natural-language description.
    pub caption: String,
    /// The scene's ground truth.
    pub labels: SceneLabels,
}

/// The training stream: image-caption pairs.
#[derive(Debug, Clone)]
pub struct BuiltinDataset {
    seed: u64,
    image_size: u32,
}

impl BuiltinDataset {
    /// A stream of `image_size`-pixel scenes.
    pub fn new(seed: u64, image_size: u32) -> Self {
        Self { seed, image_size }
    }

    /// Sample `index`: always the same for the same seed.
    pub fn sample(&self, index: u64) -> Sample {
        let mut rng = stream(self.seed, index);
        let count = if rng.random_bool(0.5) { 1 } else { rng.random_range(2..=4) };
        let labels = SceneLabels::draw(count, &mut rng);
        let image = render(&labels, self.image_size, &mut rng);
        let caption = caption(&labels, &mut rng);
        Sample { image, caption, labels }
    }
}

/// A caption in the manner of alt-text: it always names the object (the shape), and adds some of
/// the other attributes. Which ones varies by caption, because an attribute is learnt from the
/// captions that leave the rest unsaid: with every attribute always named, a scene is matched by
/// its easy ones (colour, position) and shape is barely learnt (see docs/perf.md).
fn caption(l: &SceneLabels, rng: &mut ChaCha8Rng) -> String {
    let colour = COLOURS[l.colour].0;
    let with_colour = rng.random_bool(0.35);
    let described = |noun: &str| if with_colour { format!("{colour} {noun}") } else { noun.to_owned() };
    match l.position {
        Some(p) => {
            let described = described(SHAPES[l.shape]);
            let article = if rng.random_bool(0.3) { ["a", "one", "a single"][rng.random_range(0..3)] } else { "a" };
            let article = if article == "a" && described.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { article };
            let framed = frame(&format!("{article} {described}"), "is", rng);
            match rng.random_bool(0.5).then(|| POSITIONS[p]) {
                Some(position) if rng.random_bool(0.7) => format!("{framed} {position}"),
                Some(position) => format!("{position}, {framed}"),
                None => framed,
            }
        }
        None => {
            let described = described(SHAPE_PLURALS[l.shape]);
            let quantity = if rng.random_bool(0.8) {
                Some(COUNTS[l.count - 1])
            } else {
                rng.random_bool(0.5).then_some("some")
            };
            let objects = match quantity {
                Some(q) => format!("{q} {described}"),
                None => described,
            };
            frame(&objects, "are", rng)
        }
    }
}

/// `object` alone or in one of the phrasings captions wrap it in.
fn frame(object: &str, verb: &str, rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..5) {
        0 => object.to_owned(),
        1 => format!("a photo of {object}"),
        2 => format!("a picture of {object}"),
        3 => format!("there {verb} {object}"),
        _ => format!("an image of {object}"),
    }
}

/// Whether the point (`dx`, `dy`) from a shape's centre, in units of its radius, is inside it.
fn inside(shape: usize, dx: f32, dy: f32) -> bool {
    match shape {
        0 => dx * dx + dy * dy <= 1.0,
        1 => dx.abs() <= 0.8 && dy.abs() <= 0.8,
        2 => dy <= 0.7 && dy >= -1.0 + 2.0 * dx.abs(), // apex up, base at 0.7
        3 => {
            // A five-pointed star: inside if within the star's radius at this angle.
            let angle = dy.atan2(dx) + std::f32::consts::FRAC_PI_2;
            let sector = std::f32::consts::TAU / 5.0;
            let t = (angle.rem_euclid(sector) / sector - 0.5).abs() * 2.0; // 0 at a point, 1 between points
            (dx * dx + dy * dy).sqrt() <= 1.0 - 0.55 * t
        }
        4 => (dx.abs() <= 0.3 && dy.abs() <= 1.0) || (dy.abs() <= 0.3 && dx.abs() <= 1.0),
        _ => dx.abs() + dy.abs() <= 1.0,
    }
}

fn render(l: &SceneLabels, size: u32, rng: &mut ChaCha8Rng) -> SourceImage {
    let s = size as f32;
    let n = size as usize;
    // Background: a grey level or a gentle two-tone gradient, away from the object's colour.
    let base: f32 = if matches!(l.colour, 6 | 7) { rng.random_range(90.0..170.0) } else { rng.random_range(60.0..200.0) };
    let tint: [f32; 3] = std::array::from_fn(|_| rng.random_range(-25.0..25.0));
    let gradient: f32 = if rng.random_bool(0.5) { rng.random_range(-40.0..40.0) } else { 0.0 };
    let noise: f32 = rng.random_range(0.0..12.0);
    let mut pixels = vec![0u8; n * n * 3];
    for y in 0..n {
        let g = gradient * (y as f32 / s - 0.5);
        for x in 0..n {
            for c in 0..3 {
                let v = base + tint[c] + g + rng.random_range(-noise..=noise);
                pixels[(y * n + x) * 3 + c] = v.clamp(0.0, 255.0) as u8;
            }
        }
    }
    // Objects: one placed by its position, or several small ones that do not overlap.
    let mut centres: Vec<(f32, f32, f32)> = Vec::new();
    if let Some(p) = l.position {
        let r = s * if l.large { rng.random_range(0.22..0.27) } else { rng.random_range(0.12..0.16) };
        let (near, far, mid) = (r + s * 0.04, s - r - s * 0.04, s / 2.0);
        let jitter = |rng: &mut ChaCha8Rng| rng.random_range(-0.06..0.06) * s;
        let (cx, cy) = match p {
            0 => (near + jitter(rng).abs(), mid + jitter(rng)),
            1 => (far - jitter(rng).abs(), mid + jitter(rng)),
            2 => (mid + jitter(rng), near + jitter(rng).abs()),
            3 => (mid + jitter(rng), far - jitter(rng).abs()),
            _ => (mid + jitter(rng) * 0.5, mid + jitter(rng) * 0.5),
        };
        centres.push((cx, cy, r));
    } else {
        let r = s * rng.random_range(0.09..0.12);
        while centres.len() < l.count {
            let (cx, cy) = (rng.random_range(r..s - r), rng.random_range(r..s - r));
            if centres.iter().all(|&(x, y, _)| ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() > 2.2 * r) {
                centres.push((cx, cy, r));
            }
        }
    }
    let colour = COLOURS[l.colour].1;
    for &(cx, cy, r) in &centres {
        let (x0, x1) = (((cx - r).floor().max(0.0)) as usize, ((cx + r).ceil() as usize).min(n));
        let (y0, y1) = (((cy - r).floor().max(0.0)) as usize, ((cy + r).ceil() as usize).min(n));
        for y in y0..y1 {
            for x in x0..x1 {
                if inside(l.shape, (x as f32 + 0.5 - cx) / r, (y as f32 + 0.5 - cy) / r) {
                    pixels[(y * n + x) * 3..(y * n + x) * 3 + 3].copy_from_slice(&colour);
                }
            }
        }
    }
    SourceImage { mode: ImageMode::Rgb, width: size, height: size, pixels, zero_colour: [0; 3] }
}

/// A held-out zero-shot classification task on rendered scenes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinTask {
    /// Which shape (6 classes).
    Shape,
    /// Which colour (8 classes).
    Colour,
    /// How many objects (4 classes).
    Count,
    /// Where the object is (5 classes).
    Position,
}

/// Evaluation draws come from their own seed space, apart from any training stream.
const EVAL_SEED: u64 = 0x005E_ED0F_E7A1_0000;

impl BuiltinTask {
    /// Every task.
    pub const ALL: [Self; 4] = [Self::Shape, Self::Colour, Self::Count, Self::Position];

    /// The task's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Shape => "shape",
            Self::Colour => "colour",
            Self::Count => "count",
            Self::Position => "position",
        }
    }

    /// Class names, in label order.
    pub fn classnames(self) -> Vec<String> {
        match self {
            Self::Shape => SHAPES.iter().map(|s| s.to_string()).collect(),
            Self::Colour => COLOURS.iter().map(|(c, _)| c.to_string()).collect(),
            Self::Count => ["one shape", "two shapes", "three shapes", "four shapes"].iter().map(|s| s.to_string()).collect(),
            Self::Position => POSITIONS.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Prompt templates, `{}` standing for a class name.
    pub fn templates(self) -> &'static [&'static str] {
        match self {
            Self::Shape => &["a photo of a {}.", "a {}.", "a picture of a {} shape."],
            Self::Colour => &["a photo of a {} shape.", "something {}.", "a {} object."],
            Self::Count => &["a photo of {}.", "a picture with {}.", "{}."],
            Self::Position => &["a shape {}.", "a photo of an object {}.", "something {} of the picture."],
        }
    }

    /// Evaluation sample `index` (image, label), never drawn by a training stream.
    pub fn sample(self, index: u64, image_size: u32) -> (SourceImage, usize) {
        let mut rng = stream(EVAL_SEED ^ (self as u64 + 1).wrapping_mul(0xA5A5_A5A5), index);
        let count = if self == Self::Count { rng.random_range(1..=4) } else { 1 };
        let labels = SceneLabels::draw(count, &mut rng);
        let label = match self {
            Self::Shape => labels.shape,
            Self::Colour => labels.colour,
            Self::Count => labels.count - 1,
            Self::Position => labels.position.unwrap_or(4),
        };
        (render(&labels, image_size, &mut rng), label)
    }
}

use clip_data::builtin::{BuiltinDataset, BuiltinTask, COLOURS, COUNTS, POSITIONS, SHAPES};

#[test]
fn samples_are_deterministic_and_seeds_differ() {
    let (a, b) = (BuiltinDataset::new(7, 64), BuiltinDataset::new(8, 64));
    for i in [0u64, 1, 1000, u64::MAX] {
        let (x, y) = (a.sample(i), a.sample(i));
        assert_eq!(x.image.pixels, y.image.pixels);
        assert_eq!(x.caption, y.caption);
        assert_ne!(x.image.pixels, b.sample(i).image.pixels);
    }
    assert_eq!(a.sample(3).image.pixels.len(), 64 * 64 * 3);
}

#[test]
fn captions_name_what_is_drawn_and_the_object_is_there() {
    let data = BuiltinDataset::new(1, 64);
    let mut captions = std::collections::HashSet::new();
    let mut named_colour = 0;
    for i in 0..500 {
        let s = data.sample(i);
        let (colour, rgb) = COLOURS[s.labels.colour];
        // A caption names the shape, and never a wrong colour, count or position.
        let words: Vec<&str> = s.caption.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).collect();
        let shape_of = |w: &str| SHAPES.iter().position(|&n| w == n || w == format!("{n}s") || w == format!("{n}es"));
        assert!(words.iter().any(|w| shape_of(w) == Some(s.labels.shape)), "{i}: {:?}", s.caption);
        for w in &words {
            assert!(COLOURS.iter().all(|(c, _)| c != w) || *w == colour, "{i}: wrong colour in {:?}", s.caption);
            assert!(shape_of(w).is_none_or(|k| k == s.labels.shape), "{i}: wrong shape in {:?}", s.caption);
            assert!(COUNTS.iter().position(|c| c == w).is_none_or(|k| k + 1 == s.labels.count), "{i}: wrong count in {:?}", s.caption);
        }
        for (p, position) in POSITIONS.iter().enumerate() {
            assert!(!s.caption.contains(position) || s.labels.position == Some(p), "{i}: wrong position in {:?}", s.caption);
        }
        named_colour += usize::from(words.contains(&colour));
        let painted = s.image.pixels.chunks_exact(3).filter(|p| *p == rgb).count();
        assert!(painted >= 40, "{i}: only {painted} pixels of the object's colour");
        captions.insert(s.caption);
    }
    assert!(captions.len() > 300, "captions should vary: {}", captions.len());
    // Some captions leave the colour unsaid, so that the shape alone has to match them.
    assert!((100..250).contains(&named_colour), "{named_colour} of 500 captions name the colour");
}

#[test]
fn tasks_have_the_paper_style_classes_and_all_appear() {
    for task in BuiltinTask::ALL {
        let classes = task.classnames();
        let expected = match task {
            BuiltinTask::Shape => 6,
            BuiltinTask::Colour => 8,
            BuiltinTask::Count => 4,
            BuiltinTask::Position => 5,
        };
        assert_eq!(classes.len(), expected, "{}", task.name());
        assert!(task.templates().iter().all(|t| t.contains("{}")));
        let mut seen = vec![0; classes.len()];
        for i in 0..400 {
            let (image, label) = task.sample(i, 32);
            assert_eq!((image.width, image.height), (32, 32));
            seen[label] += 1;
        }
        assert!(seen.iter().all(|&n| n >= 400 / classes.len() / 3), "{}: {seen:?}", task.name());
    }
    // Held out: evaluation scenes are not training scenes.
    let train = BuiltinDataset::new(0, 32);
    assert_ne!(BuiltinTask::Shape.sample(0, 32).0.pixels, train.sample(0).image.pixels);
}

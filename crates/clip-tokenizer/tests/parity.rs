use clip_tokenizer::{EOT, PAD, Tokenizer};

/// Lines and the ids open_clip 3.3.0 gives them, from `scripts/gen_fixtures.py`.
const FIXTURES: &str = include_str!("fixtures/open_clip_ids.jsonl");

#[test]
fn identical_ids_to_open_clip_on_every_fixture_line() {
    let tokenizer = Tokenizer::get();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in FIXTURES.lines().enumerate() {
        let record: serde_json::Value = serde_json::from_str(line).expect("fixture line is JSON");
        let text = record["text"].as_str().expect("text");
        let context_length = record["context_length"].as_u64().expect("context_length") as usize;
        let mut expected: Vec<u32> =
            record["ids"].as_array().expect("ids").iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(expected.last(), Some(&EOT));
        expected.resize(context_length, PAD);
        let got = tokenizer.tokenize(text, context_length).expect("tokenize");
        if got != expected {
            failures.push(format!("line {}: {:?}\n  open_clip {:?}\n  ours      {:?}", n + 1, text.chars().take(80).collect::<String>(), expected, got));
        }
        checked += 1;
    }
    assert!(checked >= 5000, "only {checked} fixture lines");
    assert!(failures.is_empty(), "{} of {checked} lines differ:\n{}", failures.len(), failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
}

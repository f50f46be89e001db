//! open_clip's `HFTokenizer` ids for tokenizers built by `scripts/gen_hf_fixtures.py`.

use std::path::{Path, PathBuf};

use clip_tokenizer::hf::{Clean, HfError, HfOptions, HfTokenizer};

/// The tokenizer test corpus: `line` in the expected rows is a line number of this file, from 0.
const CORPUS: &str = include_str!("fixtures/open_clip_ids.jsonl");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf")
}

fn ids(value: &serde_json::Value) -> Vec<u32> {
    value.as_array().expect("ids").iter().map(|v| v.as_u64().expect("id") as u32).collect()
}

/// Every variant of `expected.jsonl` (folder, clean, strip_sep_token, context length): our rows
/// equal open_clip's exactly, padding included.
#[test]
fn identical_ids_to_open_clip_hf_tokenizer() {
    let texts: Vec<String> = CORPUS
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_owned())
        .collect();
    let expected = std::fs::read_to_string(fixtures().join("expected.jsonl")).expect("expected.jsonl");
    let mut current: Option<(String, HfTokenizer, usize, u32)> = None;
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for line in expected.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(v) = record.get("variant") {
            let folder = v["folder"].as_str().unwrap();
            let options = HfOptions::from_kwargs(Some(&serde_json::json!({
                "clean": v["clean"], "strip_sep_token": v["strip_sep_token"],
            })))
            .unwrap();
            let tokenizer = HfTokenizer::from_dir(&fixtures().join(folder), options).unwrap();
            let pad = v["pad_id"].as_u64().unwrap() as u32;
            assert_eq!(tokenizer.pad_id(), pad, "{folder}: pad id");
            let name = format!("{folder} clean={} strip_sep={}", v["clean"], v["strip_sep_token"]);
            current = Some((name, tokenizer, v["context_length"].as_u64().unwrap() as usize, pad));
            continue;
        }
        let (name, tokenizer, context_length, pad) = current.as_ref().expect("a variant line first");
        let text = &texts[record["line"].as_u64().unwrap() as usize];
        let mut want = ids(&record["ids"]);
        want.resize(*context_length, *pad);
        let got = tokenizer.tokenize(text, *context_length).unwrap();
        if got != want {
            failures.push(format!("{name}: {:?}\n  open_clip {want:?}\n  ours      {got:?}", text.chars().take(60).collect::<String>()));
        }
        *checked.entry(name.clone()).or_default() += 1;
    }
    assert_eq!(checked.len(), 6, "{checked:?}");
    assert!(checked.values().all(|&n| n > 900), "{checked:?}");
    assert!(failures.is_empty(), "{} rows differ:\n{}", failures.len(), failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n"));
}

/// The SentencePiece conversion builds the tokenizer transformers saves from the same model.
#[test]
fn spiece_model_converts_to_transformers_tokenizer_json() {
    let spm = HfTokenizer::from_dir(&fixtures().join("unigram-spm"), HfOptions::default()).unwrap();
    let json = HfTokenizer::from_dir(&fixtures().join("unigram-json"), HfOptions::default()).unwrap();
    assert_eq!(spm.core().get_vocab(true), json.core().get_vocab(true));
    for text in ["Hello <extra_id_3> world</s>", "<sep>x<pad>", "ＬＯＵＤ ﬁsh café", "", "\u{3000}a\tb"] {
        assert_eq!(spm.tokenize(text, 24).unwrap(), json.tokenize(text, 24).unwrap(), "{text:?}");
    }
}

#[test]
fn batch_equals_rows_and_short_contexts_keep_the_end_token() {
    let tokenizer = HfTokenizer::from_dir(&fixtures().join("bert-wordpiece"), HfOptions::default()).unwrap();
    let long = "word ".repeat(100);
    let texts = ["a photo of a cat", "", long.as_str()];
    let batch = tokenizer.tokenize_batch(&texts, 8).unwrap();
    for (row, text) in batch.chunks(8).zip(texts) {
        assert_eq!(row, tokenizer.tokenize(text, 8).unwrap().as_slice());
    }
    let sep = tokenizer.sep_id().unwrap();
    assert_eq!(batch[8 * 2 + 7], sep, "truncated rows end with [SEP]");
    assert_eq!(tokenizer.tokenize("x", 2).unwrap().len(), 2);
    assert!(matches!(tokenizer.tokenize("x", 1), Err(HfError::ContextLength(1))));
}

#[test]
fn kwargs_are_parsed_and_unknown_ones_refused() {
    let parse = |v: serde_json::Value| HfOptions::from_kwargs(Some(&v));
    assert_eq!(HfOptions::from_kwargs(None).unwrap(), HfOptions::default());
    let o = parse(serde_json::json!({"clean": "canonicalize", "strip_sep_token": true})).unwrap();
    assert_eq!((o.clean, o.strip_sep_token), (Clean::Canonicalize, true));
    assert!(parse(serde_json::json!({"clean": "nope"})).is_err());
    assert!(parse(serde_json::json!({"language": "en"})).is_err());
    assert_eq!(Clean::Canonicalize.apply("A_Photo, of: \"the\" Cat!!"), "a photo of the cat");
    assert_eq!(Clean::Whitespace.apply("  A  &amp;\tB "), "A & B");
    assert_eq!(Clean::Lower.apply("  A  &amp;\tB "), "a & b");
}

#[test]
fn a_folder_without_a_tokenizer_is_an_error() {
    let err = HfTokenizer::from_dir(&fixtures(), HfOptions::default()).unwrap_err();
    assert!(matches!(err, HfError::NoTokenizer(_)), "{err}");
}

use std::io::Write;
use std::process::{Command, Stdio};

fn run(input: &[u8], args: &[&str]) -> (String, String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clip"))
        .arg("tokenize")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("clip starts");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap(), output.status.success())
}

#[test]
fn one_json_row_per_line_in_order() {
    let (stdout, stderr, ok) = run(b"hello world\n\nHi there", &[]);
    assert!(ok, "{stderr}");
    let rows: Vec<Vec<u32>> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.len() == 77));
    assert_eq!(&rows[0][..5], &[49406, 3306, 1002, 49407, 0]);
    assert_eq!(&rows[1][..3], &[49406, 49407, 0]);
    assert_eq!(&rows[2][..5], &[49406, 1883, 997, 49407, 0]);
}

#[test]
fn invalid_utf8_is_replaced_with_a_warning() {
    let (stdout, stderr, ok) = run(b"caf\xe9\nok\n", &["--context-length", "8"]);
    assert!(ok);
    assert_eq!(stdout.lines().count(), 2);
    assert!(stdout.lines().all(|l| serde_json::from_str::<Vec<u32>>(l).unwrap().len() == 8));
    assert!(stderr.contains("line 1") && stderr.contains("U+FFFD"), "{stderr}");
}

#[test]
fn a_too_short_context_is_an_error() {
    let (_, stderr, ok) = run(b"x\n", &["--context-length", "1"]);
    assert!(!ok);
    assert!(stderr.contains("context length 1"), "{stderr}");
}

/// `--model-config` with `text_cfg.hf_tokenizer_name` a local folder: open_clip's HFTokenizer ids
/// (from clip-tokenizer's fixtures), with the config's context length and tokenizer_kwargs.
#[test]
fn model_config_with_a_local_hf_tokenizer_gives_open_clip_ids() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip-tokenizer/tests/fixtures");
    let corpus: Vec<String> = std::fs::read_to_string(fixtures.join("open_clip_ids.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_owned())
        .collect();
    let expected = std::fs::read_to_string(fixtures.join("hf/expected.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (folder, clean, strip_sep, context_length) in [("gemma-bpe", "canonicalize", false, 64), ("bert-wordpiece", "whitespace", true, 32)] {
        // The variant's rows, for single-line texts (stdin is line-based).
        let mut rows = Vec::new();
        let mut pad = 0;
        let mut inside = false;
        for line in expected.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(v) = record.get("variant") {
                inside = v["folder"] == folder && v["clean"] == clean && v["context_length"] == context_length;
                pad = v["pad_id"].as_u64().unwrap() as u32;
                continue;
            }
            let text = &corpus[record["line"].as_u64().unwrap() as usize];
            if inside && !text.contains(['\n', '\r']) && rows.len() < 300 {
                let mut ids: Vec<u32> = serde_json::from_value(record["ids"].clone()).unwrap();
                ids.resize(context_length, pad);
                rows.push((text.clone(), ids));
            }
        }
        assert!(rows.len() >= 100, "{folder}: {} rows", rows.len());
        let config = dir.path().join(format!("{folder}.json"));
        let json = serde_json::json!({"text_cfg": {
            "context_length": context_length,
            "hf_tokenizer_name": fixtures.join("hf").join(folder),
            "tokenizer_kwargs": {"clean": clean, "strip_sep_token": strip_sep},
        }});
        std::fs::write(&config, json.to_string()).unwrap();
        let input: String = rows.iter().map(|(t, _)| format!("{t}\n")).collect();
        let (stdout, stderr, ok) = run(input.as_bytes(), &["--model-config", config.to_str().unwrap(), "--offline"]);
        assert!(ok, "{stderr}");
        let got: Vec<Vec<u32>> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(got.len(), rows.len(), "{folder}");
        for ((text, want), got) in rows.iter().zip(&got) {
            assert_eq!(got, want, "{folder}: {text:?}");
        }
    }
}

/// A config without `hf_tokenizer_name` keeps OpenAI's BPE (at the config's context length).
#[test]
fn model_config_without_hf_tokenizer_is_openai_bpe() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m.json");
    std::fs::write(&config, r#"{"text_cfg": {"context_length": 16}}"#).unwrap();
    let (stdout, stderr, ok) = run(b"hello world\n", &["--model-config", config.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let row: Vec<u32> = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(row.len(), 16);
    assert_eq!(&row[..4], &[49406, 3306, 1002, 49407]);
}

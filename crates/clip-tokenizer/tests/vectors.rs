use clip_tokenizer::{EOT, Error, SOT, Tokenizer, clean};

fn check(text: &str, context_length: usize, expected_prefix: &[u32]) {
    let row = Tokenizer::get().tokenize(text, context_length).unwrap();
    assert_eq!(row.len(), context_length);
    assert_eq!(&row[..expected_prefix.len()], expected_prefix, "{text:?}");
    assert!(row[expected_prefix.len()..].iter().all(|&id| id == 0), "{text:?}: padding must be 0");
}

#[test]
fn published_vectors() {
    // huggingface/transformers#12142, diffusers#2201, instant-clip-tokenizer's doctests.
    check("hello world", 77, &[49406, 3306, 1002, 49407]);
    check("test tokenization", 77, &[49406, 1628, 32634, 10847, 49407]);
    check("Hi there", 77, &[49406, 1883, 997, 49407]);
    check("Hi", 5, &[49406, 1883, 49407]);
    check("How are you?", 5, &[49406, 829, 631, 592, 49407]);
    assert_eq!(Tokenizer::get().encode("A person riding a motorcycle"), vec![320, 2533, 6765, 320, 10297]);
    assert_eq!(Tokenizer::get().decode(&Tokenizer::get().encode("Hello world!!!")), "hello world !!! ");
}

#[test]
fn truncation_keeps_the_end_token_last() {
    let text = "a ".repeat(500);
    for context_length in [2, 3, 16, 77] {
        let row = Tokenizer::get().tokenize(&text, context_length).unwrap();
        assert_eq!(row.len(), context_length);
        assert_eq!(row[0], SOT);
        assert_eq!(row[context_length - 1], EOT);
    }
    assert!(matches!(Tokenizer::get().tokenize("x", 1), Err(Error::ContextLength(1))));
}

#[test]
fn batch_matches_single_rows_in_order() {
    let long = "x".repeat(3000);
    let texts = ["a photo of a cat", "", "東京タワー", "&amp; more", long.as_str()];
    let batch = Tokenizer::get().tokenize_batch(&texts, 77).unwrap();
    assert_eq!(batch.len(), texts.len() * 77);
    for (row, text) in batch.chunks(77).zip(texts) {
        assert_eq!(row, Tokenizer::get().tokenize(text, 77).unwrap().as_slice());
    }
}

/// The reference's decode joins words with the space that `</w>` stands for, so a round trip
/// gives the cleaned text with every pre-token followed by one space.
#[test]
fn decode_inverts_encode_for_ascii_and_latin_text() {
    let tokenizer = Tokenizer::get();
    for text in [
        "A photo of a Dog, sitting on the grass!",
        "Crème brûlée à la française",
        "Straße über Äpfel, ¿Dónde está el niño?",
        "It's 12:30 & we'll be late...",
    ] {
        let cleaned = clean(text);
        let ids = tokenizer.encode(text);
        let decoded = tokenizer.decode(&ids);
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(squash(&decoded), squash(&cleaned), "{text:?}");
        assert!(decoded.ends_with(' '));
        // Decoding loses nothing BPE needs: the decoded text encodes to the same ids.
        assert_eq!(tokenizer.encode(&decoded), ids, "{text:?}");
    }
}

/// Tokenizing stops after the first segments that fill the context; the rows must equal those
/// from cleaning the whole text, for texts of many lines and of more than ftfy's 1M-code-point
/// segments, with HTML references and mojibake where segments meet.
#[test]
fn early_stop_equals_cleaning_everything() {
    let tokenizer = Tokenizer::get();
    let line = "Caf\u{c3}\u{a9} &amp; cr\u{e8}me, \u{6771}\u{4eac} &eacute";
    let texts = [
        format!("{}\n{}", line.repeat(40_000), line.repeat(10)),
        (0..500).map(|i| format!("{line} {i} &am")).collect::<Vec<_>>().join("\np;"),
        format!("{}&amp;\n<b>x</b> &amp; {}", "word ".repeat(300_000), "tail ".repeat(100)),
        "\n".repeat(2000) + "late text after many empty lines",
        // Many short lines: prefixes are offered at doublings, not per line.
        "\n \t\n".repeat(100_000) + &line.repeat(30),
    ];
    for text in &texts {
        for context_length in [8, 77] {
            let mut expected = vec![SOT];
            expected.extend(tokenizer.encode(text).into_iter().take(context_length - 2));
            expected.push(EOT);
            expected.resize(context_length, 0);
            assert_eq!(tokenizer.tokenize(text, context_length).unwrap(), expected);
        }
    }
}

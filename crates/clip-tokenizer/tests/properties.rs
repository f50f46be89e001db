use clip_tokenizer::{EOT, SOT, Tokenizer, VOCAB_SIZE};
use proptest::prelude::*;

fn well_formed(row: &[u32], context_length: usize) {
    assert_eq!(row.len(), context_length);
    assert_eq!(row[0], SOT);
    let end = row.iter().rposition(|&id| id == EOT).expect("an end token");
    assert!(row[end + 1..].iter().all(|&id| id == 0));
    assert!(row.iter().all(|&id| (id as usize) < VOCAB_SIZE));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes, decoded as a line would be (invalid UTF-8 replaced), give a well-formed row.
    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400), context_length in 2usize..100) {
        let text = String::from_utf8_lossy(&bytes);
        well_formed(&Tokenizer::get().tokenize(&text, context_length).unwrap(), context_length);
    }

    /// Any Unicode text, including characters the cleanup rewrites.
    #[test]
    fn arbitrary_text(text in "\\PC{0,200}", context_length in 2usize..100) {
        well_formed(&Tokenizer::get().tokenize(&text, context_length).unwrap(), context_length);
    }
}

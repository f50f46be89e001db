//! Tokenizes text as CLIP's text tower reads it, without libtorch: BPE pieces, the framed row of
//! 77 ids, and the text decoded back.
//!
//!     cargo run --release -p clip-tokenizer --example tokenize -- "any text you like"
#![allow(clippy::print_stdout)] // an example's output is its result

use clip_tokenizer::{DEFAULT_CONTEXT_LENGTH, EOT, PAD, SOT, Tokenizer};

fn main() -> Result<(), clip_tokenizer::Error> {
    let given: Vec<String> = std::env::args().skip(1).collect();
    let texts = if given.is_empty() { vec!["A photo of a cat.".to_owned(), "Ünïcödé &amp; HTML   spaces, ftfy’d".to_owned()] } else { given };
    let tokenizer = Tokenizer::get();
    for text in &texts {
        let ids = tokenizer.encode(text);
        let pieces: Vec<String> = ids.iter().map(|&id| tokenizer.decode(&[id])).collect();
        let row = tokenizer.tokenize(text, DEFAULT_CONTEXT_LENGTH)?;
        let used = row.iter().rposition(|&id| id != PAD).map_or(0, |i| i + 1);
        assert!(row[0] == SOT && row[used - 1] == EOT, "framed as [SOT, ids…, EOT, 0…]");
        println!("{text:?}");
        println!("  clean:   {:?}", clip_tokenizer::clean(text));
        println!("  pieces:  {pieces:?}");
        println!("  row:     {:?} … ({used} of {DEFAULT_CONTEXT_LENGTH} used, the rest {PAD})", &row[..used]);
        println!("  decoded: {:?}", tokenizer.decode(&ids));
    }
    let batch = tokenizer.tokenize_batch(&texts, DEFAULT_CONTEXT_LENGTH)?;
    println!("a batch of {} rows: {} ids, row-major", texts.len(), batch.len());
    Ok(())
}

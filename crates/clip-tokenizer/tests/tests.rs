//! Integration tests of clip-tokenizer (no libtorch needed).

mod parity; // identical ids to open_clip on thousands of varied lines
mod properties; // arbitrary bytes never panic and always give well-formed rows
mod hf; // Hugging Face tokenizers: open_clip HFTokenizer ids for unigram, byte-fallback BPE, WordPiece
mod vectors; // published test vectors, truncation, round trips

//! The reference's pre-tokenizer, `<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|
//! [\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+` under Python `regex`'s IGNORECASE, as a hand-written scanner.
//!
//! A scanner rather than a regex because the classes must be Python's, not Rust's: under
//! case-insensitive matching the two engines disagree on characters such as U+0345, which Python
//! puts in no class at all (so it is skipped). The class of every code point comes from the
//! reference itself (`PRETOKEN_CLASSES`, generated).

use crate::tables::PRETOKEN_CLASSES;

const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const OTHER: u8 = 8;

fn class(c: char) -> u8 {
    let cp = c as u32;
    if cp < 0x80 {
        return match c {
            'a'..='z' | 'A'..='Z' => LETTER,
            '0'..='9' => NUMBER,
            '\t'..='\r' | '\u{1C}'..='\u{1F}' | ' ' => 4,
            _ => OTHER,
        };
    }
    match PRETOKEN_CLASSES.binary_search_by(|&(lo, hi, _)| {
        if hi < cp {
            std::cmp::Ordering::Less
        } else if lo > cp {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) => PRETOKEN_CLASSES[i].2,
        Err(_) => OTHER,
    }
}

/// Case-insensitive match of `pattern` (lower-case ASCII) at the start of `text`, with the one
/// simple case folding onto these letters outside ASCII: 'ſ' (U+017F) is 's'. Returns the length.
fn starts_with_folded(text: &str, pattern: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    for expected in pattern.chars() {
        let (_, c) = chars.next()?;
        if c.to_ascii_lowercase() != expected && !(expected == 's' && c == 'ſ') {
            return None;
        }
    }
    Some(chars.next().map_or(text.len(), |(i, _)| i))
}

const ALTERNATIVES: [&str; 9] = ["<start_of_text>", "<end_of_text>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

/// The pre-tokens of `text`, left to right.
pub(crate) fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < text.len() {
            let rest = &text[pos..];
            let first = rest.chars().next()?;
            let len = if matches!(first, '<' | '\'') {
                ALTERNATIVES.iter().find_map(|alt| starts_with_folded(rest, alt))
            } else {
                None
            };
            let len = len.or_else(|| {
                let run = |wanted: u8| rest.char_indices().find(|&(_, c)| class(c) != wanted).map_or(rest.len(), |(i, _)| i);
                match class(first) {
                    LETTER => Some(run(LETTER)),
                    NUMBER => Some(first.len_utf8()),
                    OTHER => Some(run(OTHER)),
                    _ => None, // White space, or a character no alternative matches: skipped.
                }
            });
            match len {
                Some(len) => {
                    pos += len;
                    return Some(&rest[..len]);
                }
                None => pos += first.len_utf8(),
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn splits_like_the_reference() {
        let got: Vec<&str> = pieces("it's 42 cats!! <end_of_text>x'll ok").collect();
        assert_eq!(got, ["it", "'s", "4", "2", "cats", "!!", "<end_of_text>", "x", "'ll", "ok"]);
        let got: Vec<&str> = pieces("x\u{345}y '' ſ'ſ").collect();
        assert_eq!(got, ["x", "y", "''", "ſ", "'ſ"]);
    }
}

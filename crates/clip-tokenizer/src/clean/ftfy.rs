//! ftfy 6.3.1's `fix_text` with its default configuration, as open_clip calls it.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use super::encoding::{fix_c1_controls, fix_encoding};
use super::html::ftfy_unescape;
use crate::tables::{LIGATURES, WIDTH_MAP};

/// ftfy fixes text in segments of at most this many code points (`max_decode_length`).
const MAX_DECODE_LENGTH: usize = 1_000_000;

/// ftfy's `fix_text`: each line (or 1M-code-point piece) is fixed on its own. HTML entities are
/// unescaped until a segment contains '<' (then the text is taken for real HTML, and stays so).
pub(crate) fn fix_text(text: &str) -> String {
    Segments::new(text).collect()
}

/// The fixed segments of a text, in order: ftfy's `fix_text` one segment at a time, so a caller
/// that needs only the start of a huge text can stop early.
pub(crate) struct Segments<'a> {
    rest: &'a str,
    unescape_html: bool,
}

impl<'a> Segments<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self { rest: text, unescape_html: true }
    }

    /// True once every segment has been yielded.
    pub(crate) fn is_done(&self) -> bool {
        self.rest.is_empty()
    }
}

impl Iterator for Segments<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.rest.is_empty() {
            return None;
        }
        let mut end = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        if let Some((cut, _)) = self.rest[..end].char_indices().nth(MAX_DECODE_LENGTH) {
            end = cut;
        }
        let segment = &self.rest[..end];
        if segment.contains('<') {
            self.unescape_html = false;
        }
        self.rest = &self.rest[end..];
        Some(fix_segment(segment, self.unescape_html))
    }
}

/// ftfy's `fix_and_explain`: apply every fixer in order until the text stops changing.
fn fix_segment(segment: &str, unescape_html: bool) -> String {
    let mut text = segment.to_owned();
    loop {
        let original = text.clone();
        if unescape_html {
            text = ftfy_unescape(&text);
        }
        text = fix_encoding(&text);
        text = fix_c1_controls(&text);
        text = map_chars(&text, LIGATURES);
        text = map_chars(&text, WIDTH_MAP);
        text = uncurl_quotes(&text);
        text = fix_line_breaks(&text);
        // fix_surrogates has nothing to do: a Rust string cannot hold surrogates.
        text = remove_terminal_escapes(&text);
        text = remove_control_chars(&text);
        if is_nfc_quick(text.chars()) != IsNormalized::Yes {
            text = text.nfc().collect();
        }
        if text == original {
            return text;
        }
    }
}

/// Replaces each character found in a sorted `(char, replacement)` table.
fn map_chars(text: &str, table: &[(char, &str)]) -> String {
    let (first, last) = (table[0].0, table[table.len() - 1].0);
    if !text.chars().any(|c| (first..=last).contains(&c)) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c < first || c > last {
            out.push(c);
            continue;
        }
        match table.binary_search_by_key(&c, |(from, _)| *from) {
            Ok(i) => out.push_str(table[i].1),
            Err(_) => out.push(c),
        }
    }
    out
}

fn uncurl_quotes(text: &str) -> String {
    if !text.chars().any(|c| c == '\u{2BC}' || ('\u{2018}'..='\u{201F}').contains(&c)) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| match c {
            '\u{2BC}' | '\u{2018}'..='\u{201B}' => '\'',
            '\u{201C}'..='\u{201F}' => '"',
            other => other,
        })
        .collect()
}

fn fix_line_breaks(text: &str) -> String {
    if !text.contains(['\r', '\u{2028}', '\u{2029}', '\u{85}']) {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

fn remove_terminal_escapes(text: &str) -> String {
    static ANSI: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\x1b\[((?:\d|;)*)([a-zA-Z])").expect("valid regex"));
    if !text.contains('\u{1b}') {
        return text.to_owned();
    }
    ANSI.replace_all(text, "").into_owned()
}

/// Control characters with no displayed effect (ftfy's `CONTROL_CHARS`); tab, line feed, form
/// feed and carriage return stay.
fn is_removed_control(c: char) -> bool {
    matches!(c as u32, 0..=8 | 11 | 14..=31 | 127 | 0x206A..=0x206F | 0xFEFF | 0xFFF9..=0xFFFC)
}

fn remove_control_chars(text: &str) -> String {
    if !text.chars().any(is_removed_control) {
        return text.to_owned();
    }
    text.chars().filter(|&c| !is_removed_control(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::fix_text;

    #[test]
    fn documented_examples() {
        // ftfy 6.3.1 docstring examples, with the values 6.3.1 actually returns (it keeps "…").
        assert_eq!(fix_text("âœ” No problems"), "✔ No problems");
        assert_eq!(fix_text("&macr;\\_(ã\u{83}\u{84})_/&macr;"), "¯\\_(ツ)_/¯");
        assert_eq!(fix_text("Broken text&hellip; it&#x2019;s ﬂubberiﬁc!"), "Broken text… it's flubberific!");
        assert_eq!(fix_text("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
    }

    #[test]
    fn html_is_left_alone_once_a_tag_appears() {
        assert_eq!(fix_text("<b>&amp;</b>"), "<b>&amp;</b>");
        assert_eq!(fix_text("a &amp; b"), "a & b");
    }
}

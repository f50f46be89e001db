//! The reference's text cleanup (open_clip `_clean_lower`): ftfy's `fix_text`, Python's
//! `html.unescape` twice, strip, whitespace collapse, lower case.
//!
//! Each piece reproduces Python's behaviour, not just its intent: Python's notion of whitespace
//! (`str.isspace`), HTML5 reference rules, ftfy's codec tables and heuristics.

mod badness;
mod encoding;
mod ftfy;
mod html;

use crate::tables::LOWERCASE;


/// Python's `str.isspace`.
pub(crate) fn is_py_space(c: char) -> bool {
    matches!(
        c as u32,
        0x09..=0x0D | 0x1C..=0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    )
}

/// True for text that every cleanup step leaves as it is, apart from whitespace: printable ASCII
/// plus tab, line feed, form feed and carriage return, and no '&'.
fn is_plain(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'\t' | b'\n' | 0x0C | b'\r' | 0x20..=0x7E) && b != b'&')
}

/// open_clip's `_clean_lower`: `whitespace_clean(basic_clean(text)).lower()`.
pub fn clean(text: &str) -> String {
    if is_plain(text) { clean_plain(text) } else { finish(&ftfy::fix_text(text)) }
}

/// open_clip's `_clean_whitespace`: `whitespace_clean(basic_clean(text))`, case kept.
pub(crate) fn clean_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_words(&mut out, &basic_clean(text));
    out
}

/// open_clip's `_clean_canonicalize`: `canonicalize_text(basic_clean(text))`: '_' to a space,
/// ASCII punctuation (Python's `string.punctuation`) removed, lower case, whitespace collapsed.
pub(crate) fn clean_canonicalize(text: &str) -> String {
    let kept: String =
        basic_clean(text).chars().filter(|c| !(c.is_ascii_punctuation() && *c != '_')).map(|c| if c == '_' { ' ' } else { c }).collect();
    let mut out = String::with_capacity(kept.len());
    push_words(&mut out, &py_lower(&kept));
    out
}

/// open_clip's `basic_clean` but for its final strip (every caller collapses white space after):
/// ftfy's `fix_text`, then `html.unescape` twice. Plain text only loses or gains white space.
fn basic_clean(text: &str) -> std::borrow::Cow<'_, str> {
    if is_plain(text) { text.into() } else { html::unescape(&html::unescape(&ftfy::fix_text(text))).into() }
}

/// [`clean`] for text that [`is_plain`]: only whitespace and case change.
fn clean_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_words(&mut out, text);
    out.make_ascii_lowercase();
    out
}

/// The steps after ftfy: HTML unescaping twice, whitespace collapse, lower case.
fn finish(fixed: &str) -> String {
    let mut out = String::with_capacity(fixed.len());
    push_words(&mut out, &html::unescape(&html::unescape(fixed)));
    py_lower(&out)
}

/// Cleaned text of ever longer prefixes of `text`, each with whether it is the whole text. ftfy
/// fixes segments (lines, or a million code points) independently, so a prefix made of whole
/// segments cleans to the whole text's cleaning except near its end. A prefix is offered each time
/// the fixed text has at least doubled, so the total work stays linear in the text however many
/// short lines it has.
pub(crate) fn clean_prefixes(text: &str) -> impl Iterator<Item = (String, bool)> + '_ {
    /// Fixed text gathered before the first prefix is offered.
    const FIRST: usize = 4096;
    let plain = is_plain(text);
    let mut segments = ftfy::Segments::new(text);
    let mut fixed = String::new();
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        if plain {
            done = true;
            return Some((clean_plain(text), true));
        }
        let target = (2 * fixed.len()).max(FIRST);
        while !segments.is_done() && fixed.len() < target {
            fixed.push_str(&segments.next().unwrap_or_default());
        }
        done = segments.is_done();
        Some((finish(&fixed), done))
    })
}

/// The part of a cleaned prefix that later text cannot change: all but the last `margin` bytes,
/// cut back to a space. Past a segment's end, HTML references may straddle the cut and the last
/// word may go on; neither reaches back more than a few dozen characters.
pub(crate) fn stable_part(cleaned: &str) -> &str {
    const MARGIN: usize = 256;
    let Some(limit) = cleaned.len().checked_sub(MARGIN) else { return "" };
    let limit = (0..=limit).rev().find(|&i| cleaned.is_char_boundary(i)).unwrap_or(0);
    cleaned[..limit].rfind(' ').map_or("", |i| &cleaned[..i])
}

/// Python 3.11's `str.lower` (Unicode 14): the character mappings are the reference's own (Rust's
/// newer Unicode lower-cases letters Python leaves alone), and a capital sigma becomes final 'ς'
/// by the rule both share, decided within its word.
fn py_lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if c == 'Σ' {
            out.push(final_sigma_aware(text, i));
            continue;
        }
        match LOWERCASE.binary_search_by_key(&c, |(from, _)| *from) {
            Ok(k) => out.push_str(LOWERCASE[k].1),
            Err(_) => out.push(c),
        }
    }
    out
}

/// The lower case of the 'Σ' at byte `at`: 'ς' at the end of a word, else 'σ'. The rule only looks
/// across case-ignorable characters, which white space is not, so the word decides it.
fn final_sigma_aware(text: &str, at: usize) -> char {
    let start = text[..at].rfind(is_py_space).map_or(0, |j| j + text[j..].chars().next().map_or(1, char::len_utf8));
    let end = text[at..].find(is_py_space).map_or(text.len(), |j| at + j);
    // Lower-casing maps each character to a fixed number of characters, whatever its context.
    let index: usize = text[start..at].chars().map(|c| c.to_lowercase().count()).sum();
    text[start..end].to_lowercase().chars().nth(index).unwrap_or('σ')
}

/// `" ".join(text.split())`: words separated by single spaces (which also strips both ends).
fn push_words(out: &mut String, text: &str) {
    for word in text.split(is_py_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn cleans_like_open_clip() {
        assert_eq!(clean("  Hello   World\t!  "), "hello world !");
        assert_eq!(clean("Caf\u{e9} &amp;amp; cr\u{e8}me"), "café & crème");
        assert_eq!(clean("sch\u{c3}\u{b6}n"), "schön");
        assert_eq!(clean("\u{201c}Quoted\u{201d}"), "\"quoted\"");
        assert_eq!(clean(""), "");
        assert_eq!(clean("ΟΔΟΣ ΣΑΣ"), "οδος σας");
        assert_eq!(clean("İstanbul"), "i\u{307}stanbul");
    }
}

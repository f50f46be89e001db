//! ftfy's mojibake repair (`fix_encoding`): re-encode text in a single-byte codec it could have been
//! wrongly decoded with, and decode the bytes as UTF-8 — only when the badness heuristic says the
//! text looks like mojibake, and only if the result decodes cleanly.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::bytes::Regex as BytesRegex;
use regex::Regex;

use super::badness::is_bad;
use crate::tables::{CHARMAPS, UTF8_CONTINUATION, UTF8_CONTINUATION_STRICT, UTF8_FIRST_OF_2, UTF8_FIRST_OF_3, UTF8_FIRST_OF_4};

/// One of ftfy's single-byte codecs, both ways.
struct Charmap {
    name: &'static str,
    decode: &'static [char; 256],
    encode: HashMap<char, u8>,
}

static CODECS: LazyLock<Vec<Charmap>> = LazyLock::new(|| {
    CHARMAPS
        .iter()
        .map(|(name, decode)| Charmap {
            name,
            decode,
            encode: decode.iter().enumerate().map(|(byte, &c)| (c, byte as u8)).collect(),
        })
        .collect()
});

impl Charmap {
    /// ftfy's `possible_encoding`: every character is ASCII (but U+001A) or one this codec's high
    /// bytes (or byte 0x1A) decode to.
    fn encode(&self, text: &str) -> Option<Vec<u8>> {
        text.chars()
            .map(|c| if (c as u32) < 0x80 && c != '\u{1A}' { Some(c as u8) } else { self.encode.get(&c).copied() })
            .collect()
    }
}

fn codec(name: &str) -> &'static Charmap {
    CODECS.iter().find(|codec| codec.name == name).expect("codec in the generated table")
}

/// UTF-8 sequences with a space where a byte 0xA0 belongs (ftfy's `ALTERED_UTF8_RE`).
static ALTERED_UTF8: LazyLock<BytesRegex> = LazyLock::new(|| {
    BytesRegex::new(
        r"(?-u)[\xc2\xc3\xc5\xce\xd0\xd9] |[\xe2\xe3] [\x80-\x84\x86-\x9f\xa1-\xbf]|[\xe0-\xe3][\x80-\x84\x86-\x9f\xa1-\xbf] |\xf0 [\x80-\xbf][\x80-\xbf]|\xf0[\x80-\xbf] [\x80-\xbf]|\xf0[\x80-\xbf][\x80-\xbf] ",
    )
    .expect("valid regex")
});

/// ftfy's `restore_byte_a0`: a space that was a mangled U+00A0 inside a UTF-8 sequence.
fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    // "Ã " is "à " unless a word follows that makes it Portuguese "à" … (ftfy's A_GRAVE_WORD_RE).
    let mut with_a_grave = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xC3 && bytes.get(i + 1) == Some(&b' ') {
            let rest = &bytes[i + 2..];
            let excluded = [&b" "[..], b"quele", b"quela", b"quilo", b"s "].iter().any(|w| rest.starts_with(w));
            if !excluded {
                with_a_grave.extend_from_slice(b"\xC3\xA0 ");
                i += 2;
                continue;
            }
        }
        with_a_grave.push(bytes[i]);
        i += 1;
    }
    ALTERED_UTF8
        .replace_all(&with_a_grave, |caps: &regex::bytes::Captures<'_>| {
            caps[0].iter().map(|&b| if b == b' ' { 0xA0 } else { b }).collect::<Vec<u8>>()
        })
        .into_owned()
}

/// ftfy's `replace_lossy_sequences`: UTF-8 sequences partly lost to '?' or U+001A become U+FFFD.
fn replace_lossy_sequences(bytes: &[u8]) -> Vec<u8> {
    static LOSSY_UTF8: LazyLock<BytesRegex> = LazyLock::new(|| {
        BytesRegex::new(
            r"(?-u)[\xc2-\xdf][\x1a]|[\xc2-\xc3][?]|\xed[\xa0-\xaf][\x1a?]\xed[\xb0-\xbf][\x1a?\x80-\xbf]|\xed[\xa0-\xaf][\x1a?\x80-\xbf]\xed[\xb0-\xbf][\x1a?]|[\xe0-\xef][\x1a?][\x1a\x80-\xbf]|[\xe0-\xef][\x1a\x80-\xbf][\x1a?]|[\xf0-\xf4][\x1a?][\x1a\x80-\xbf][\x1a\x80-\xbf]|[\xf0-\xf4][\x1a\x80-\xbf][\x1a?][\x1a\x80-\xbf]|[\xf0-\xf4][\x1a\x80-\xbf][\x1a\x80-\xbf][\x1a?]|\x1a",
        )
        .expect("valid regex")
    });
    LOSSY_UTF8.replace_all(bytes, &b"\xEF\xBF\xBD"[..]).into_owned()
}

/// ftfy's `utf-8-variants` codec: UTF-8 that also accepts CESU-8 surrogate pairs and Java's
/// two-byte NUL (`C0 80`). `None` where Python would raise `UnicodeDecodeError`.
fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        let special = (0..rest.len()).find(|&i| match rest[i] {
            0xC0 => rest.get(i + 1).is_none_or(|&b| b == 0x80),
            0xED => {
                rest.get(i + 1).is_none_or(|b| (0xA0..=0xBF).contains(b))
                    && (rest.get(i + 1).is_none() || rest.get(i + 2).is_none_or(|b| (0x80..=0xBF).contains(b)))
            }
            _ => false,
        });
        let Some(cut) = special else {
            out.push_str(std::str::from_utf8(rest).ok()?);
            break;
        };
        if cut > 0 {
            out.push_str(std::str::from_utf8(&rest[..cut]).ok()?);
            rest = &rest[cut..];
            continue;
        }
        if rest[0] == 0xC0 {
            if rest.len() < 2 {
                return None;
            }
            out.push('\0');
            rest = &rest[2..];
            continue;
        }
        // A CESU-8 surrogate pair: ED [A0-AF] xx ED [B0-BF] xx.
        let is_pair = rest.len() >= 6
            && (0xA0..=0xAF).contains(&rest[1])
            && (0x80..=0xBF).contains(&rest[2])
            && rest[3] == 0xED
            && (0xB0..=0xBF).contains(&rest[4])
            && (0x80..=0xBF).contains(&rest[5]);
        if !is_pair {
            return None; // A lone surrogate is invalid UTF-8, as in Python's strict decoder.
        }
        let code = ((u32::from(rest[1]) & 0x0F) << 16)
            + ((u32::from(rest[2]) & 0x3F) << 10)
            + ((u32::from(rest[4]) & 0x0F) << 6)
            + (u32::from(rest[5]) & 0x3F)
            + 0x10000;
        out.push(char::from_u32(code)?);
        rest = &rest[6..];
    }
    Some(out)
}

/// Windows-1252 proper (not ftfy's sloppy variant): five bytes are undefined.
fn decode_windows_1252(bytes: &[u8]) -> Option<String> {
    let sloppy = codec("sloppy-windows-1252");
    bytes
        .iter()
        .map(|&b| match b {
            0x81 | 0x8D | 0x8F | 0x90 | 0x9D => None,
            0..=0x7F => Some(b as char),
            _ => Some(sloppy.decode[b as usize]),
        })
        .collect()
}

/// ftfy's `fix_c1_controls`: C1 controls read as Windows-1252, as HTML5 does.
pub(crate) fn fix_c1_controls(text: &str) -> String {
    if !text.chars().any(is_c1) {
        return text.to_owned();
    }
    let sloppy = codec("sloppy-windows-1252");
    text.chars().map(|c| if is_c1(c) { sloppy.decode[c as usize] } else { c }).collect()
}

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9F}').contains(&c)
}

/// ftfy's `decode_inconsistent_utf8`: fix UTF-8 mojibake embedded in otherwise different text.
fn decode_inconsistent_utf8(text: &str) -> String {
    static STRICT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^[{UTF8_CONTINUATION_STRICT}]$")).expect("valid regex"));
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut start) = (0, 0);
    while let Some(m) = DETECTOR.find_at(text, start) {
        // The reference's negative lookbehind: no strict continuation character just before.
        let before = text[..m.start()].chars().next_back();
        if before.is_some_and(|c| STRICT.is_match(c.encode_utf8(&mut [0; 4]))) {
            start = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let substr = m.as_str();
        out.push_str(&text[copied..m.start()]);
        if substr.len() < text.len() && is_bad(substr) {
            out.push_str(&fix_encoding(substr));
        } else {
            out.push_str(substr);
        }
        copied = m.end();
        start = m.end();
        if m.is_empty() {
            break;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// One step of ftfy's `_fix_encoding_one_step_and_explain`.
fn fix_encoding_step(text: &str) -> String {
    if text.is_empty() || text.is_ascii() || !is_bad(text) {
        return text.to_owned();
    }
    let mut latin1_possible = false;
    for codec in CODECS.iter() {
        let Some(mut bytes) = codec.encode(text) else { continue };
        if codec.name == "latin-1" {
            latin1_possible = true;
        }
        if codec.name != "macroman" && ALTERED_UTF8.is_match(&bytes) {
            bytes = restore_byte_a0(&bytes);
        }
        if codec.name.starts_with("sloppy") {
            bytes = replace_lossy_sequences(&bytes);
        }
        let decoded = if bytes.contains(&0xED) || bytes.contains(&0xC0) {
            decode_utf8_variants(&bytes)
        } else {
            String::from_utf8(bytes).ok()
        };
        if let Some(fixed) = decoded {
            return fixed;
        }
    }
    if DETECTOR.is_match(text) {
        let fixed = decode_inconsistent_utf8(text);
        if fixed != text {
            return fixed;
        }
    }
    if latin1_possible {
        // ftfy tests for 'windows-1252' among the possible codecs, a name never in that list, so it
        // always tries this transcoding.
        let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        if let Some(fixed) = decode_windows_1252(&bytes).filter(|fixed| fixed != text) {
            return fixed;
        }
    }
    fix_c1_controls(text)
}

/// Runs of what UTF-8 mojibake looks like (ftfy's `UTF8_DETECTOR_RE`, less its lookbehind, which
/// [`decode_inconsistent_utf8`] applies by hand: Rust's regex has no lookaround).
static DETECTOR: LazyLock<Regex> = LazyLock::new(|| {
    let (f2, f3, f4, cont) = (UTF8_FIRST_OF_2, UTF8_FIRST_OF_3, UTF8_FIRST_OF_4, UTF8_CONTINUATION);
    Regex::new(&format!("(?:[{f2}][{cont}]|[{f3}][{cont}]{{2}}|[{f4}][{cont}]{{3}})+")).expect("valid regex")
});

/// ftfy's `fix_encoding`: repeat single steps until nothing changes.
pub(crate) fn fix_encoding(text: &str) -> String {
    let mut text = text.to_owned();
    loop {
        let fixed = fix_encoding_step(&text);
        if fixed == text {
            return text;
        }
        text = fixed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_common_mojibake() {
        // Expected values from ftfy 6.3.1's documentation and behaviour.
        assert_eq!(fix_encoding("sÃ³"), "só");
        assert_eq!(fix_encoding("voilÃ le travail"), "voilà le travail");
        assert_eq!(fix_encoding("âœ” No problems"), "✔ No problems");
        assert_eq!(fix_encoding("schÃ¶n"), "schön");
        assert_eq!(fix_encoding("plain text"), "plain text");
        assert_eq!(fix_encoding("café"), "café");
    }

    #[test]
    fn utf8_variants() {
        assert_eq!(decode_utf8_variants(b"a\xC0\x80b").as_deref(), Some("a\0b"));
        assert_eq!(decode_utf8_variants(b"\xED\xA0\xBD\xED\xB8\x8A").as_deref(), Some("😊"));
        assert_eq!(decode_utf8_variants(b"\xED\xA0\xBD"), None);
        assert_eq!(decode_utf8_variants(b"\xC0"), None);
    }
}

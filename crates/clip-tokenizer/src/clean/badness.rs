//! ftfy's mojibake detector: sequences of the ~400 characters UTF-8 mojibake is made of, in
//! contexts far likelier to be mojibake than intended text (ftfy `badness.py`, whose categories
//! are in the generated tables).

use std::sync::LazyLock;

use regex::Regex;

use crate::tables::*;

/// Python's `re` `\s` (`str.isspace`) includes U+001C..U+001F, Rust's `\s` does not.
pub(super) const PY_SPACE: &str = r"\s\x1C-\x1F";
/// Python's `re` `\w` (`str.isalnum` or `_`).
const PY_WORD: &str = r"\p{L}\p{N}_";

static BADNESS: LazyLock<Regex> = LazyLock::new(|| {
    let (c1, bad, law, currency) = (MOJIBAKE_C1, MOJIBAKE_BAD, MOJIBAKE_LAW, MOJIBAKE_CURRENCY);
    let (start, end, numeric) = (MOJIBAKE_START_PUNCTUATION, MOJIBAKE_END_PUNCTUATION, MOJIBAKE_NUMERIC);
    let (kaomoji, upper, lower) = (MOJIBAKE_KAOMOJI, MOJIBAKE_UPPER_ACCENTED, MOJIBAKE_LOWER_ACCENTED);
    let (upper_common, lower_common, boxes, common) =
        (MOJIBAKE_UPPER_COMMON, MOJIBAKE_LOWER_COMMON, MOJIBAKE_BOX, MOJIBAKE_COMMON);
    let alternatives = [
        format!("[{c1}]"),
        format!("[{bad}{lower}{upper}{boxes}{start}{end}{currency}{numeric}{law}][{bad}]"),
        format!("[a-zA-Z][{lower_common}{upper_common}][{bad}]"),
        format!("[{bad}][{lower}{upper}{boxes}{start}{end}{currency}{numeric}{law}]"),
        format!("[{lower}{lower_common}{boxes}{end}{currency}{numeric}][{upper}]"),
        format!("[{boxes}{end}{currency}{numeric}][{lower}]"),
        format!("[{lower}{boxes}{end}][{currency}]"),
        format!("[{PY_SPACE}][{upper}][{currency}]"),
        format!("[{upper}{boxes}][{numeric}{law}]"),
        format!("[{lower}{upper}{boxes}{currency}{end}][{start}][{numeric}]"),
        format!("[{lower}{upper}{currency}{numeric}{boxes}{law}][{end}][{start}]"),
        format!("[{currency}{numeric}{boxes}][{start}]"),
        format!("[a-z][{upper}][{start}{currency}]"),
        format!("[{boxes}][{kaomoji}]"),
        format!("[{lower}{upper}{currency}{numeric}{start}{end}{law}][{boxes}]"),
        format!("[{boxes}][{end}]"),
        format!("[{lower}{upper}][{start}{end}][{PY_WORD}]"),
        // The ligature œ when not followed by an unaccented Latin letter.
        "[Œœ][^A-Za-z]".to_owned(),
        // Degree signs after capital letters.
        format!("[{upper}]°"),
        // Common Windows-1252 2-character mojibake not covered above.
        format!("[ÂÃÎÐ][€œŠš¢£Ÿž\u{a0}\u{ad}®©°·»{start}{end}–—´]"),
        "×[²³]".to_owned(),
        // Windows-1252 mojibake of Arabic words: four characters, since 'common' ones are involved.
        format!("[ØÙ][{common}{currency}{bad}{numeric}{start}ŸŠ®°µ»][ØÙ][{common}{currency}{bad}{numeric}{start}ŸŠ®°µ»]"),
        // Windows-1252 mojibake starting 3-character sequences of some South Asian alphabets.
        "à[²µ¹¼½¾]".to_owned(),
        // MacRoman mojibake not covered above.
        "√[±∂†≠®™´≤≥¥µø]".to_owned(),
        "≈[°¢]".to_owned(),
        "‚Ä[ìîïòôúùû†°¢π]".to_owned(),
        "‚[âó][àä°ê]".to_owned(),
        // Windows-1251 mojibake of characters in the U+2000 range.
        "вЂ".to_owned(),
        // Windows-1251 mojibake of Latin-1 characters and/or Cyrillic: three characters.
        format!("[ВГРС][{c1}{bad}{start}{end}{currency}°µ][ВГРС]"),
        // Windows-1251 on top of Latin-1 mojibake of Windows-1252 characters, near a Latin letter.
        "ГўВЂВ.[A-Za-z ]".to_owned(),
        // Windows-1252 encodings of 'à' and 'á', and of U+00A0 itself.
        "Ã[\u{a0}¡]".to_owned(),
        format!("[a-z][{PY_SPACE}]?[ÃÂ] "),
        "^[ÃÂ] ".to_owned(),
        // Â before a character it encodes as exactly that character.
        format!("[a-z.,?!{end}]Â[ {start}{end}]"),
        // Windows-1253 mojibake of characters in the U+2000 range.
        "β€[™\u{a0}Ά\u{ad}®°]".to_owned(),
        // Windows-1253 mojibake of Latin-1 characters and/or Greek.
        format!("[ΒΓΞΟ][{c1}{bad}{start}{end}{currency}°][ΒΓΞΟ]"),
        // Windows-1257 mojibake of characters in the U+2000 range.
        "ā€".to_owned(),
    ];
    // `.` in Python does not match '\n'; neither does Rust's by default.
    Regex::new(&alternatives.join("|")).expect("valid badness regex")
});

/// True if `text` shows any sign of mojibake (ftfy `is_bad`).
pub(crate) fn is_bad(text: &str) -> bool {
    BADNESS.is_match(text)
}

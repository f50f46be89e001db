#!/usr/bin/env python3
"""Writes tests/fixtures/open_clip_ids.jsonl: varied text lines and the ids open_clip gives them.

Reference: open_clip_torch 3.3.0's `SimpleTokenizer` (default `lower` cleaning, ftfy 6.3.1), context
length 77, plus some lines at shorter contexts to exercise truncation. Lines are generated
deterministically (seed 0) from:
  - English sentences from the docstrings of Python's standard library, and templated captions;
  - every Latin-1 character, C1 controls, CJK, Hangul, kana, emoji with modifiers, ZWJ sequences,
    flags and keycaps, other scripts and random code points;
  - HTML entities (named, numeric, double-escaped, invalid, inside HTML);
  - mojibake: UTF-8 decoded as Latin-1, Windows-1252 and the other codecs ftfy knows, twice over,
    and embedded in clean text;
  - curly quotes, ligatures, full-width forms, control characters, ANSI escapes, odd whitespace;
  - very long lines (up to 200k characters), very long words, multi-line texts, empty and
    blank lines, literal
    special-token strings.

Run with the reference stack installed (`cargo xtask setup --oracles`):
    .venv/bin/python crates/clip-tokenizer/scripts/gen_fixtures.py
"""
import html
import importlib
import inspect
import json
import pathlib
import pkgutil
import random
import re
import warnings

import ftfy
import open_clip
from open_clip.tokenizer import SimpleTokenizer

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "open_clip_ids.jsonl"
rng = random.Random(0)


def stdlib_sentences(limit):
    """Real English: sentences from the standard library's docstrings."""
    sentences = []
    names = sorted(m.name for m in pkgutil.iter_modules() if not m.name.startswith("_"))
    for name in names:
        if name in {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"}:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception:
            continue
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
            if not doc:
                continue
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                if 20 <= len(sentence) <= 300:
                    sentences.append(sentence)
        if len(sentences) > limit * 5:
            break
    sentences = sorted(set(sentences))
    rng.shuffle(sentences)
    return sentences[:limit]


SUBJECTS = ["a dog", "two cats", "A man", "the Woman", "three children", "an old car", "a red bicycle",
            "a bowl of soup", "the Eiffel Tower", "a 1970s TV", "Mount Everest", "an iPhone 12", "a café"]
VERBS = ["riding", "sitting on", "next to", "eating", "looking at", "jumping over", "parked near", "in front of"]
OBJECTS = ["a wooden bench", "the beach at sunset", "a snowy mountain", "a busy street in New York",
           "the table", "a pile of leaves", "an empty parking lot", "a plate of spaghetti & meatballs"]


def captions(n):
    out = []
    for _ in range(n):
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        roll = rng.random()
        if roll < 0.2:
            s = s.upper()
        elif roll < 0.4:
            s = s.title()
        if rng.random() < 0.3:
            s += rng.choice([".", "!", "!!!", "?", " :)", "...", " - photo #%d" % rng.randint(1, 99999)])
        if rng.random() < 0.2:
            s = rng.choice(["It's ", "they're ", "We'll see ", "I'm sure ", "you've got ", "He'd say "]) + s
        out.append(s)
    return out


def latin1():
    lines = [f"caf{chr(c)} {chr(c)}x {chr(c)}{chr(c)}" for c in range(0xA0, 0x100)]
    lines += [f"control {chr(c)} here" for c in range(0x80, 0xA0)]
    for _ in range(150):
        lines.append("".join(chr(rng.randint(0x20, 0xFF)) for _ in range(rng.randint(1, 40))))
    lines += ["Crème brûlée à la française", "Straße über Äpfel", "¿Dónde está el niño?", "naïve coöperation",
              "Ångström Øresund Æble", "£5 ¥100 ©2021 ®", "½ cup, ¾ mile, 2×3, ±5°"]
    return lines


def cjk_and_scripts():
    lines = []
    blocks = {
        "cjk": (0x4E00, 0x9FFF), "hiragana": (0x3041, 0x3096), "katakana": (0x30A1, 0x30FA),
        "hangul": (0xAC00, 0xD7A3), "arabic": (0x0621, 0x064A), "hebrew": (0x05D0, 0x05EA),
        "devanagari": (0x0905, 0x0939), "thai": (0x0E01, 0x0E2E), "cyrillic": (0x0410, 0x044F),
        "greek": (0x0391, 0x03C9), "math": (0x2200, 0x22FF), "arrows": (0x2190, 0x21FF),
    }
    for name, (lo, hi) in blocks.items():
        for _ in range(30):
            words = ["".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 6))]
            lines.append(" ".join(words) + (" photo" if rng.random() < 0.3 else ""))
    lines += ["東京タワーの夜景", "北京烤鸭很好吃。", "서울의 봄 풍경", "こんにちは、世界！", "Привет, мир!",
              "Γειά σου Κόσμε", "नमस्ते दुनिया", "สวัสดีชาวโลก", "مرحبا بالعالم", "שלום עולם",
              "e\u0301cole", "n\u0303", "a\u0308\u0301", "\u1e9b\u0323", "x\u0345y", "K\u212a\u2126"]
    return lines


def emoji():
    base = ["😀", "🐶", "🍕", "🚀", "❤️", "👍", "🎉", "🌍", "😂", "🙏", "✔", "☃", "⚽"]
    tones = ["\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
    zwj = ["👨\u200d👩\u200d👧\u200d👦", "👩\u200d💻", "🧑\u200d🚀", "🏳️\u200d🌈", "👁️\u200d🗨️", "🐻\u200d❄️",
           "👨🏽\u200d🍳", "❤️\u200d🔥"]
    flags = ["🇺🇸", "🇯🇵", "🇫🇷", "🇧🇷", "🇩🇪", "🇺🇳"]
    keycaps = ["1️⃣", "#️⃣", "*️⃣"]
    lines = []
    for _ in range(250):
        parts = []
        for _ in range(rng.randint(1, 5)):
            kind = rng.random()
            if kind < 0.3:
                parts.append(rng.choice(base))
            elif kind < 0.5:
                parts.append("👋" + rng.choice(tones))
            elif kind < 0.7:
                parts.append(rng.choice(zwj))
            elif kind < 0.85:
                parts.append(rng.choice(flags))
            else:
                parts.append(rng.choice(keycaps))
        text = rng.choice(["", "party ", "my dog ", "LOL "]) + rng.choice(["", " "]).join(parts)
        lines.append(text)
    return lines


def entities():
    named = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&nbsp;", "&eacute;", "&Eacute;", "&hellip;",
             "&mdash;", "&ndash;", "&copy;", "&reg;", "&trade;", "&euro;", "&pound;", "&frac12;", "&times;",
             "&AMP;", "&LT;", "&amp", "&ampx", "&notit;", "&notin;", "&nosuch;", "&Aacute", "&aacute;x"]
    numeric = ["&#39;", "&#x27;", "&#8217;", "&#x2019;", "&#65;", "&#X42;", "&#0;", "&#128;", "&#x80;",
               "&#xD800;", "&#99999999;", "&#1;", "&#x1F600;", "&#12354;", "&#xZZ;", "&#;", "&#x;"]
    lines = []
    for _ in range(300):
        parts = [rng.choice(named + numeric) for _ in range(rng.randint(1, 4))]
        text = " ".join(rng.choice(["Tom", "jerry", "a", "b", "x", "cats", "dogs"]) + p for p in parts)
        roll = rng.random()
        if roll < 0.15:
            text = "<b>" + text + "</b>"
        elif roll < 0.3:
            text = html.escape(text)  # double-escaped
        elif roll < 0.35:
            text = "1 < 2 and " + text
        lines.append(text)
    return lines


MOJIBAKE_SOURCES = ["café", "naïve", "Straße", "résumé", "“quoted”", "it’s", "—dash—", "…", "€5", "©", "ñandú",
                    "東京", "😀", "привет", "Γειά", "żółć", "şeker", "ąčęėįšųūž", "ﬁne", "½", "°C", "ä ö ü",
                    "à la carte", "Ça va", "voilà le travail", "señor", "Ελληνικά", "Україна"]
MOJIBAKE_CODECS = ["latin-1", "sloppy-windows-1252", "windows-1252", "sloppy-windows-1251", "sloppy-windows-1250",
                   "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257", "iso-8859-2", "macroman",
                   "cp437"]


def mojibake():
    lines = []
    for _ in range(800):
        src = " ".join(rng.choice(MOJIBAKE_SOURCES) for _ in range(rng.randint(1, 4)))
        codec = rng.choice(MOJIBAKE_CODECS)
        bad = src.encode("utf-8").decode(codec, errors="replace")
        if rng.random() < 0.15:  # twice over
            bad = bad.encode("utf-8").decode(rng.choice(["latin-1", "sloppy-windows-1252"]), errors="replace")
        roll = rng.random()
        if roll < 0.25:
            bad = "Clean text, then " + bad + " and more"
        elif roll < 0.35:
            bad = bad.replace("\xa0", " ")  # the a0 byte lost to a space
        elif roll < 0.4:
            bad = bad[: max(1, len(bad) - 1)]  # cut mid-sequence
        lines.append(bad)
    return lines


def typography():
    quotes = ["‘single’", "“double”", "„low“", "‹angle›", "«guillemets»", "ʼapostrophe", "‛reversed‟"]
    ligatures = ["ﬁsh", "ﬂag", "ﬀ", "ﬃ", "ﬄ", "ﬅ", "ﬆ", "Ĳssel", "ĳs", "ǅ", "ǈ", "ǋ", "ŉ"]
    fullwidth = ["ＬＯＵＤ　ＮＯＩＳＥＳ", "ｆｕｌｌｗｉｄｔｈ", "１２３", "！？", "ﾊﾝｶｸ ｶﾀｶﾅ", "＄１００", "（ａ）", "￥"]
    controls = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1c", "\x1f", "\x7f",
                "\x1b[31mred\x1b[0m", "\x1b[1;32m", "\ufeff", "\u200b", "\u200d", "\u2060", "\u206a", "\ufff9",
                "\ufffc", "\ufffd", "\r\n", "\r", "\u2028", "\u2029", "\x85"]
    spaces = ["\t", "\u3000", "\xa0", "\u2003", "\u2009", "\u202f", "\u205f", "\u1680", "  ", "\u180e"]
    lines = []
    for pool in (quotes, ligatures, fullwidth, controls, spaces):
        for _ in range(120):
            words = []
            for _ in range(rng.randint(1, 5)):
                words.append(rng.choice(pool) if rng.random() < 0.6 else rng.choice(["word", "Photo", "a", "of", "x"]))
            lines.append(rng.choice(["", " "]).join(words))
    return lines


def random_codepoints():
    lines = []
    for _ in range(400):
        chars = []
        for _ in range(rng.randint(1, 30)):
            cp = rng.choice([rng.randint(0x20, 0x2FFF), rng.randint(0x3000, 0xD7FF), rng.randint(0xE000, 0xFFFD),
                             rng.randint(0x10000, 0x1FAFF)])
            chars.append(chr(cp))
        lines.append("".join(chars))
    return lines


def long_lines(sentences):
    lines = []
    for size in [300, 1_000, 5_000, 20_000, 100_000, 200_000]:
        text = ""
        while len(text) < size:
            text += rng.choice(sentences) + " "
        lines.append(text[:size])
    for size in [100, 500, 1_000, 2_000]:
        lines.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(size)))
        lines.append("a" * size)
        lines.append("ab" * (size // 2))
    lines.append("é" * 1_000)
    lines.append("😀" * 500)
    lines.append("1234567890" * 200)
    lines.append("!?" * 1_000)
    return lines


def multiline(sentences):
    """Texts with line breaks: ftfy fixes each line on its own, and stops unescaping HTML after the
    first line with a '<'. Entities and mojibake sit at line ends, where segments meet."""
    lines = []
    for _ in range(40):
        parts = []
        for _ in range(rng.randint(2, 400)):
            roll = rng.random()
            if roll < 0.6:
                parts.append(rng.choice(sentences))
            elif roll < 0.7:
                parts.append(rng.choice(["", " ", "\t"]))
            elif roll < 0.8:
                parts.append(rng.choice(mojibake_pool))
            elif roll < 0.9:
                parts.append(rng.choice(["a &amp", "&amp;amp; b", "x &eacute", "5 &lt; 6", "<i>&amp;</i>"]))
            else:
                parts.append(rng.choice(["\r", "é\u0301", "Σ", "ΟΔΟΣ", "ﬁ", "“q”"]))
        lines.append(rng.choice(["\n", "\r\n", "\n\n"]).join(parts))
    return lines


def special():
    return ["", " ", "   ", "\t\t", "\u3000", "<start_of_text>", "<end_of_text>", "a <end_of_text> b",
            "<START_OF_TEXT>hello", "<|endoftext|>", "<|startoftext|>", "<start_of_text><end_of_text>",
            "hello world", "test tokenization", "Hi there", "A person riding a motorcycle", "How are you?"]


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    assert ftfy.__version__ == "6.3.1", ftfy.__version__
    tok = SimpleTokenizer()
    sentences = stdlib_sentences(1600)
    global mojibake_pool
    moji = mojibake()
    mojibake_pool = moji
    lines = (sentences + captions(500) + latin1() + cjk_and_scripts() + emoji() + entities() + moji
             + typography() + random_codepoints() + long_lines(sentences) + multiline(sentences) + special())
    with OUT.open("w", encoding="utf-8") as f:
        for i, text in enumerate(lines):
            # Most lines at CLIP's 77; every 7th also at a short context to exercise truncation.
            for context_length in ([77, 8] if i % 7 == 0 else [77]):
                ids = tok([text], context_length=context_length)[0].tolist()
                # Stored up to and including the end token; the rest is padding.
                used = len(ids) - ids[::-1].index(49407)
                f.write(json.dumps({"text": text, "context_length": context_length, "ids": ids[:used]},
                                   ensure_ascii=True) + "\n")
    print(f"wrote {len(lines)} lines to {OUT}")


if __name__ == "__main__":
    main()

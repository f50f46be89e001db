#!/usr/bin/env python3
"""Writes tests/fixtures/hf/: tiny Hugging Face tokenizers built here, and the ids open_clip's
`HFTokenizer` gives the tokenizer test corpus (the texts of tests/fixtures/open_clip_ids.jsonl).

Nothing is downloaded. Each tokenizer is trained on the first part of the corpus:
  - unigram-spm/   SentencePiece unigram (sentencepiece's trainer, T5's special-token layout: pad 0,
                   eos 1, unk 2, no bos), the folder holding only `spiece.model` and a
                   `tokenizer_config.json` naming T5Tokenizer: transformers converts it at load.
  - unigram-json/  the same tokenizer as transformers' `save_pretrained` writes it (`tokenizer.json`).
  - gemma-bpe/     byte-fallback BPE with Gemma's pipeline (spaces to '▁', split after each '▁',
                   `<eos>` appended as SigLIP2 does), trained with `tokenizers`' BpeTrainer.
  - bert-wordpiece/ BERT WordPiece (lower-cased, accents stripped), trained with `tokenizers`.
Each is loaded from its folder by `open_clip.tokenizer.HFTokenizer(path, context_length, clean,
strip_sep_token)` with the kwargs of the open_clip configs that use such tokenizers (SigLIP's
`canonicalize`, CLIPA's `strip_sep_token`), and `expected.jsonl` holds, per variant, every
selected corpus line's row (`line`: its line number in open_clip_ids.jsonl, from 0) up to its last non-pad id (the rest is the variant's pad id).

Run with the reference stack installed (`cargo xtask setup --oracles`):
    .venv/bin/python crates/clip-tokenizer/scripts/gen_hf_fixtures.py
"""
import json
import pathlib
import shutil

import open_clip
import sentencepiece
import tokenizers
import transformers
from open_clip.tokenizer import HFTokenizer
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
OUT = HERE / "hf"
ALL = [json.loads(line)["text"] for line in (HERE / "open_clip_ids.jsonl").open(encoding="utf-8")]
# Texts seen twice in the corpus (at two context lengths) are used once: (line number from 0, text).
FIRST = {}
for n, text in enumerate(ALL):
    FIRST.setdefault(text, n)
CORPUS = [(n, text) for text, n in FIRST.items()]
TRAIN = [t for _, t in CORPUS[:2500] if len(t) < 2000]

# (folder, clean, strip_sep_token, context_length, which corpus lines: index % 3 == k)
VARIANTS = [
    ("unigram-spm", "canonicalize", False, 64, 0),
    ("unigram-json", "whitespace", False, 64, 1),
    ("gemma-bpe", "canonicalize", False, 64, 2),
    ("gemma-bpe", "whitespace", False, 16, 0),
    ("bert-wordpiece", "whitespace", True, 32, 1),
    ("bert-wordpiece", "lower", False, 16, 2),
]


def write_config(folder, **config):
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


def unigram():
    spm = OUT / "unigram-spm"
    spm.mkdir(parents=True)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAIN), model_prefix=str(spm / "spiece"), model_type="unigram", vocab_size=800,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=0.995, user_defined_symbols=["<sep>"],
        minloglevel=2, num_threads=1, seed_sentencepiece_size=20000, shuffle_input_sentence=False)
    (spm / "spiece.vocab").unlink()
    write_config(spm, tokenizer_class="T5Tokenizer")
    # The same tokenizer as transformers saves it: tokenizer.json (and its config).
    loaded = transformers.AutoTokenizer.from_pretrained(str(spm))
    js = OUT / "unigram-json"
    loaded.save_pretrained(str(js))
    for extra in ("spiece.model", "special_tokens_map.json", "chat_template.jinja"):
        (js / extra).unlink(missing_ok=True)


def gemma():
    folder = OUT / "gemma-bpe"
    folder.mkdir(parents=True)
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=specials + byte_tokens, show_progress=False,
                                  limit_alphabet=200)
    tok.train_from_iterator(TRAIN, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A <eos>", pair="$A <eos> $B <eos>",
                                                       special_tokens=[("<eos>", tok.token_to_id("<eos>"))])
    tok.save(str(folder / "tokenizer.json"))
    write_config(folder, tokenizer_class="TokenizersBackend", pad_token="<pad>", eos_token="<eos>",
                 bos_token="<bos>", unk_token="<unk>", padding_side="right")


def bert():
    folder = OUT / "bert-wordpiece"
    folder.mkdir(parents=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None, clean_text=True,
                                                handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(TRAIN, trainers.WordPieceTrainer(vocab_size=1500, special_tokens=specials,
                                                             show_progress=False, limit_alphabet=300))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.save(str(folder / "tokenizer.json"))
    write_config(folder, tokenizer_class="BertTokenizer", do_lower_case=True, pad_token="[PAD]", sep_token="[SEP]",
                 cls_token="[CLS]", unk_token="[UNK]", mask_token="[MASK]")


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
    assert transformers.__version__ == "5.24.0", transformers.__version__
    assert sentencepiece.__version__ == "0.2.3", sentencepiece.__version__
    shutil.rmtree(OUT, ignore_errors=True)
    unigram()
    gemma()
    bert()
    rows = 0
    with (OUT / "expected.jsonl").open("w", encoding="utf-8") as f:
        for folder, clean, strip_sep, context_length, k in VARIANTS:
            tok = HFTokenizer(str(OUT / folder), context_length=context_length, clean=clean,
                              strip_sep_token=strip_sep)
            pad = tok.tokenizer.pad_token_id
            lines = [i for i in range(len(CORPUS)) if i % 3 == k]
            f.write(json.dumps({"variant": {"folder": folder, "clean": clean, "strip_sep_token": strip_sep,
                                            "context_length": context_length, "pad_id": pad}}) + "\n")
            for i in lines:
                n, text = CORPUS[i]
                ids = tok(text)[0].tolist()
                while ids and ids[-1] == pad:
                    ids.pop()
                f.write(json.dumps({"line": n, "ids": ids}) + "\n")
                rows += 1
    print(f"wrote {rows} rows over {len(VARIANTS)} variants to {OUT}")


if __name__ == "__main__":
    main()

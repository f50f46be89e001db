#!/usr/bin/env python3
"""Writes DejaVuSans-subset.ttf: DejaVu Sans 2.37 (Debian's fonts-dejavu-core) cut down to the
characters chart labels use, so the charts draw with a font that ships with clip-charts and never
with whatever a machine has installed.

    .venv/bin/pip install fonttools && .venv/bin/python crates/clip-charts/fonts/subset.py [DejaVuSans.ttf]
"""
import pathlib
import sys

from fontTools import subset

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# Printable ASCII and Latin-1, λ μ σ Δ, dashes, ellipsis, minus, ±, ×, ≤, ≥, ·, arrows.
UNICODES = [*range(0x20, 0x7F), *range(0xA0, 0x100), 0x3BB, 0x3BC, 0x3C3, 0x394, 0x2013, 0x2014, 0x2026,
            0x2212, 0xB1, 0xD7, 0x2264, 0x2265, 0xB7, 0x2190, 0x2192]


def main():
    options = subset.Options()
    options.layout_features = ["kern"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    font = subset.load_font(str(SOURCE), options)
    assert font["name"].getDebugName(5).startswith("Version 2.37"), font["name"].getDebugName(5)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=UNICODES)
    subsetter.subset(font)
    out = HERE / "DejaVuSans-subset.ttf"
    subset.save_font(font, str(out), options)
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()

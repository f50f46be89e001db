#!/usr/bin/env python3
"""max |a - b| of two float32 .npy files written by `clip embed`, without numpy (the GPU
machines may not have it). Exits 1 if above the bound given as the third argument.

    python3 scripts/npy_diff.py a.npy b.npy 1e-3
"""
import struct
import sys


def load(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x93NUMPY\x01\x00", f"{path}: not a version 1.0 .npy"
    header_len = struct.unpack("<H", data[8:10])[0]
    body = data[10 + header_len:]
    return struct.unpack(f"<{len(body) // 4}f", body)


a, b, bound = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
assert len(a) == len(b), "different shapes"
diff = max(abs(x - y) for x, y in zip(a, b))
print(f"{sys.argv[1]} vs {sys.argv[2]}: max |Δ| = {diff:.2e} (bound {bound:g})")
sys.exit(0 if diff <= bound else 1)

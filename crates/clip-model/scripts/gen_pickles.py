#!/usr/bin/env python3
"""Writes clip-model's torch.save fixtures (tests/fixtures/torch-save/) from the existing tiny-vit
weights, with torch 2.11.0 and open_clip 3.3.0; kept apart from gen_fixtures.py so that those
fixtures stay byte-identical.

From tiny-vit.safetensors (and tiny-vit-hf/model.safetensors):
  tiny-vit.bin              torch.save(state_dict), zip layout, float32 (pytorch_model.bin style)
  tiny-vit.fp16.bin         the same in float16
  tiny-vit-hf.bf16.bin      the Hugging Face CLIPModel state dict, in bfloat16
  tiny-vit.epoch_3.pt       an open_clip_train checkpoint: epoch, name, the state dict under
                            `state_dict` with DDP's `module.` prefixes, AdamW's state after one
                            step (over a few parameters, in open_clip_train's two decay groups, to
                            keep the file small) and a GradScaler's state
  tiny-vit.legacy-fp16.bin  _use_new_zipfile_serialization=False, float16
  views.pt, views.legacy.bin
                            tensors sharing one storage at offsets, transposed and strided views,
                            a Parameter, 0-d and empty tensors, one per dtype; views.safetensors
                            holds each as a contiguous copy
Payloads that run a command when unpickled by Python (each is checked here to really do so, and
to be refused by torch.load(weights_only=True)); each creates /tmp/clip-rs-pickle-canary/<name>:
  evil-os-system.{pt,pkl}   GLOBAL os.system (raw opcodes)
  evil-eval.{pt,pkl}        GLOBAL builtins.eval (raw opcodes)
  evil-popen.{pt,pkl}       subprocess.Popen via __reduce__ (protocol 2 writes it as commands.Popen)
  evil-posix-system.{pt,pkl} os.system via __reduce__, which pickles as posix.system on Linux
Malformed torch.save zips, each with a data.pkl naming one float32 storage `0`:
  bad-truncated-pkl.pt      views.pt's data.pkl cut in half
  bad-short-storage.pt      a storage of 1000 elements whose record holds 16 bytes
  bad-huge-numel.pt         a storage of 2**62 elements (its byte count overflows 64 bits)
  bad-huge-view.pt          a [2**40, 2**40] view of a 4-element storage
  bad-past-end.pt           a [4] view at offset 1 of a 4-element storage
  bad-big-endian.pt         a valid tensor, but byteorder says big
The .pt ones are torch.save-shaped zips (written with torch's own PyTorchFileWriter) whose
data.pkl is the payload; the .pkl ones are the bare pickle.

Legacy files name storages by address, so they differ from run to run; the zip files do not.

    .venv/bin/python crates/clip-model/scripts/gen_pickles.py
"""
import collections
import io
import os
import pathlib
import pickle
import struct
import subprocess
import time
import zipfile

import open_clip
import torch
from safetensors.torch import load_file, save_file

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
OUT = FIXTURES / "torch-save"
CANARY = pathlib.Path("/tmp/clip-rs-pickle-canary")


def weights():
    sd = load_file(str(FIXTURES / "tiny-vit.safetensors"))
    return {k: sd[k] for k in sorted(sd)}


def train_checkpoint(sd):
    model_params = {k: torch.nn.Parameter(v.clone()) for k, v in sd.items()}
    # open_clip_train's groups: gains and biases without weight decay, the rest with it.
    picked = ["ln_final.weight", "ln_final.bias", "logit_scale", "text_projection"]
    no_decay = [model_params[k] for k in picked if model_params[k].ndim < 2 or "ln" in k or "logit_scale" in k]
    decay = [model_params[k] for k in picked if not any(p is model_params[k] for p in no_decay)]
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.2}],
                            lr=5e-4, betas=(0.9, 0.98), eps=1e-6)
    torch.manual_seed(0)
    loss = sum((p * torch.randn_like(p)).sum() for p in no_decay + decay)
    loss.backward()
    opt.step()
    scaler = torch.amp.GradScaler("cpu")
    return {"epoch": 3, "name": "x", "state_dict": {"module." + k: v for k, v in sd.items()},
            "optimizer": opt.state_dict(), "scaler": scaler.state_dict()}


def views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    param = torch.nn.Parameter(torch.linspace(-1, 1, 5))
    out = {
        "base": base,
        "rows": base[1:3],              # shares base's storage, offset 6
        "column": base[:, 2],           # offset 2, stride 6
        "transposed": base.t(),         # non-contiguous
        "tail": base.view(-1)[19:],     # offset 19
        "param": param,
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
        "half": torch.tensor([1.5, -2.25], dtype=torch.float16),
        "bf16": torch.tensor([0.5, 3.0], dtype=torch.bfloat16),
        "i64": torch.tensor([-(2**40), 7]),
        "i32": torch.tensor([-5, 9], dtype=torch.int32),
        "i16": torch.tensor([-300, 2], dtype=torch.int16),
        "i8": torch.tensor([-7, 1], dtype=torch.int8),
        "u8": torch.tensor([255, 0], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
    }
    assert out["rows"].untyped_storage().data_ptr() == base.untyped_storage().data_ptr()
    return out


def payloads():
    """Pickles that run a command under pickle.loads, keyed by fixture name."""
    def target(name):
        return str(CANARY / name)

    def raw_call(module, name, arg):
        # protocol 2: GLOBAL module name, (arg,), REDUCE, STOP
        a = arg.encode()
        return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + \
            b"X" + struct.pack("<I", len(a)) + a + b"\x85R."

    class Popen:
        def __reduce__(self):
            return (subprocess.Popen, (["touch", target("popen")],))

    class System:
        def __reduce__(self):
            return (os.system, ("touch " + target("posix-system"),))

    return {
        "os-system": raw_call("os", "system", "touch " + target("os-system")),
        "eval": raw_call("builtins", "eval", f"open({target('eval')!r}, 'w').close()"),
        "popen": pickle.dumps(Popen(), protocol=2),
        "posix-system": pickle.dumps(System(), protocol=4),
    }


def write_zip(path, data_pkl, records=(), byteorder=b"little"):
    writer = torch._C.PyTorchFileWriter(str(path))
    writer.write_record("data.pkl", data_pkl, len(data_pkl))
    for name, data in records:
        writer.write_record(name, data, len(data))
    writer.write_record("byteorder", byteorder, len(byteorder))
    writer.write_end_of_file()
    del writer


class _Storage:
    def __init__(self, numel):
        self.pid = ("storage", torch.FloatStorage, "0", "cpu", numel)


class _Tensor:
    def __init__(self, numel, offset, size, stride):
        self.args = (_Storage(numel), offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Storage) else None


def tensor_pickle(numel, offset, size, stride):
    """data.pkl of {"w": a float32 tensor on storage `0`}, as torch.save writes it (protocol 2)."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump({"w": _Tensor(numel, offset, size, stride)})
    return buf.getvalue()


def malformed():
    four = struct.pack("<4f", 1, 2, 3, 4)
    with zipfile.ZipFile(OUT / "views.pt") as z:
        views_pkl = z.read("views/data.pkl")
    return {
        "truncated-pkl": (views_pkl[: len(views_pkl) // 2], [], b"little"),
        "short-storage": (tensor_pickle(1000, 0, (1000,), (1,)), [("data/0", four)], b"little"),
        "huge-numel": (tensor_pickle(2**62, 0, (4,), (1,)), [("data/0", four)], b"little"),
        "huge-view": (tensor_pickle(4, 0, (2**40, 2**40), (1, 1)), [("data/0", four)], b"little"),
        "past-end": (tensor_pickle(4, 1, (4,), (1,)), [("data/0", four)], b"little"),
        "big-endian": (tensor_pickle(4, 0, (4,), (1,)), [("data/0", four)], b"big"),
    }


def main():
    assert torch.__version__.split("+")[0] == "2.11.0", torch.__version__
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    OUT.mkdir(exist_ok=True)
    sd = weights()
    torch.save(sd, OUT / "tiny-vit.bin")
    torch.save({k: v.half() for k, v in sd.items()}, OUT / "tiny-vit.fp16.bin")
    hf = load_file(str(FIXTURES / "tiny-vit-hf" / "model.safetensors"))
    torch.save({k: hf[k].bfloat16() for k in sorted(hf)}, OUT / "tiny-vit-hf.bf16.bin")
    torch.save(train_checkpoint(sd), OUT / "tiny-vit.epoch_3.pt")
    torch.save({k: v.half() for k, v in sd.items()}, OUT / "tiny-vit.legacy-fp16.bin",
               _use_new_zipfile_serialization=False)
    v = views()
    torch.save(v, OUT / "views.pt")
    torch.save(v, OUT / "views.legacy.bin", _use_new_zipfile_serialization=False)
    save_file({k: t.detach().clone().contiguous() for k, t in v.items()}, str(OUT / "views.safetensors"))
    for name in ["tiny-vit.bin", "tiny-vit.epoch_3.pt", "views.pt"]:
        torch.load(OUT / name, weights_only=True)  # torch's own restricted loader accepts them

    for name, (data_pkl, records, order) in malformed().items():
        write_zip(OUT / f"bad-{name}.pt", data_pkl, records, order)

    CANARY.mkdir(exist_ok=True)
    for name, payload in payloads().items():
        (OUT / f"evil-{name}.pkl").write_bytes(payload)
        write_zip(OUT / f"evil-{name}.pt", payload)
        marker = CANARY / name
        for path in (OUT / f"evil-{name}.pt", OUT / f"evil-{name}.pkl"):
            try:
                torch.load(path, weights_only=True)
                raise AssertionError(f"{path.name}: torch.load(weights_only=True) accepted it")
            except pickle.UnpicklingError:
                pass
            assert not marker.exists()
        # The payload is real: Python's own unpickler runs it.
        pickle.loads(payload)
        for _ in range(100):
            if marker.exists():
                break
            time.sleep(0.05)
        assert marker.exists(), f"{name}: the payload did not run under pickle.loads"
        marker.unlink()
    for path in sorted(OUT.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()

"""torch.optim.AdamW on fixed gradients, as a parity fixture for clip-train's AdamW.

Two parameters (a 2x3 matrix with weight decay, a 3-vector without), five steps with given
gradients and learning rates. Writes tests/fixtures/adamw.json.

    .venv/bin/python crates/clip-train/scripts/gen_fixtures.py
"""

import json
import os

import torch

torch.manual_seed(0)
w = torch.randn(2, 3, dtype=torch.float32, requires_grad=True)
b = torch.randn(3, dtype=torch.float32, requires_grad=True)
init = {"w": w.detach().flatten().tolist(), "b": b.detach().tolist()}
opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.2}, {"params": [b], "weight_decay": 0.0}],
                        lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
steps = []
for i in range(5):
    gw, gb = torch.randn(2, 3) * (i + 1), torch.randn(3) * 0.1
    lr = 1e-3 * (i + 1) / 5
    for group in opt.param_groups:
        group["lr"] = lr
    w.grad, b.grad = gw.clone(), gb.clone()
    opt.step()
    steps.append({"lr": lr, "gw": gw.flatten().tolist(), "gb": gb.tolist(),
                  "w": w.detach().flatten().tolist(), "b": b.detach().tolist()})
out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "adamw.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "init": init, "betas": [0.9, 0.98], "eps": 1e-6,
               "weight_decay": 0.2, "steps": steps}, f, indent=1)

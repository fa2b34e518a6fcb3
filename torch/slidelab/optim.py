"""AdamW as src/core/optim/adamw.ts computes it on the lab's cpu backend (its fused loop): decoupled
weight decay on parameters whose spec has decay=true (none on biases, norms, tokens, position
embeddings), a learning-rate multiplier per parameter (layer-wise decay; 0 = frozen), moments in
float32, every update computed in float64 in the JavaScript's order and stored as float32:

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g
    p = p (1 - lr wd) - lr (m / bc1) / (sqrt(v / bc2) + eps),  bc = 1 - b ** t
"""
from __future__ import annotations

import numpy as np
import torch

from .models import LabParams, to_lab_layout, to_torch_layout


class AdamW:
    def __init__(self, params: LabParams, opt: dict, lr_scales: dict | None = None):
        self.params = params
        self.opt = opt
        self.lr_scales = lr_scales or {}
        self.t = 0
        self.m = {n: torch.zeros_like(params[n], requires_grad=False) for n in params.names}
        self.v = {n: torch.zeros_like(params[n], requires_grad=False) for n in params.names}

    @torch.no_grad()
    def apply(self, grads: dict, lr: float, weight_decay: float) -> None:
        """grads: name -> gradient (torch layout). lr, weight_decay: this step's schedule values."""
        self.t += 1
        b1, b2, eps = self.opt["beta1"], self.opt["beta2"], self.opt["eps"]
        bc1 = 1 - b1 ** self.t
        bc2 = 1 - b2 ** self.t
        for spec in self.params.specs:
            name = spec["name"]
            scale = self.lr_scales.get(name, 1)
            if scale == 0:
                continue  # frozen: parameter and moments untouched
            g = grads.get(name)
            if g is None:
                raise ValueError(f"no gradient for {name}")
            plr = lr * scale
            decay = weight_decay if spec["decay"] else 0
            keep = 1 - plr * decay
            p = self.params[name]
            g64 = g.to(torch.float64)
            m = (b1 * self.m[name].to(torch.float64) + (1 - b1) * g64).to(torch.float32)
            v = (b2 * self.v[name].to(torch.float64) + (1 - b2) * g64 * g64).to(torch.float32)
            new = p.to(torch.float64) * keep - (plr * (m.to(torch.float64) / bc1)) / (torch.sqrt(v.to(torch.float64) / bc2) + eps)
            self.m[name].copy_(m)
            self.v[name].copy_(v)
            p.copy_(new.to(torch.float32))

    def lab_state(self) -> dict:
        """Moments in the lab's layout: {'m.<name>': ..., 'v.<name>': ...} in spec order."""
        out = {}
        for n in self.params.names:
            out[f"m.{n}"] = to_lab_layout(self.m[n])
        for n in self.params.names:
            out[f"v.{n}"] = to_lab_layout(self.v[n])
        return out

    def load_lab_state(self, t: int, tensors: dict) -> None:
        for s in self.params.specs:
            n = s["name"]
            for key, store in (("m", self.m), ("v", self.v)):
                store[n].copy_(torch.from_numpy(to_torch_layout(tensors[f"{key}.{n}"], s["shape"])).to(store[n].device))
        self.t = int(t)


def lr_scales_of(specs: list) -> dict:
    """The exported per-parameter learning-rate multipliers (encoderLrScales in fine-tune.ts)."""
    return {s["name"]: float(s.get("lrScale", 1)) for s in specs}


def checksum(params: LabParams) -> np.ndarray:
    """Replica checksum as params.ts: per parameter (lab layout, flattened) sum(p) and
    sum(p * sin(0.618 i)), in float64."""
    out = []
    for v in params.lab_values().values():
        flat = v.reshape(-1).astype(np.float64)
        w = np.sin(np.arange(flat.size, dtype=np.float64) * 0.618)
        out.extend([flat.sum(), (flat * w).sum()])
    return np.array(out, dtype=np.float64)

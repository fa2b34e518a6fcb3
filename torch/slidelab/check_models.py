"""The encoders against the lab's: features and every parameter's gradient of sum(features * dy)
(what an encoder rank backpropagates), from cases the TypeScript side wrote.

    python -m slidelab.check_models <dir>   ->  prints a JSON report (normalised L1 per case)

<dir>/cases.json lists {name, encoder (config), specs: [{name, shape}]}; <dir>/<name>.safetensors
holds `x` [B, S, S, 3], `dy` [B, D], `features` [B, D], `param.<name>` and `grad.<name>` in the
lab's layouts (written by scripts/torch-equivalence.test.ts with tfjs on the cpu backend).
"""
from __future__ import annotations

import json
import os
import sys

import torch

from .metrics import normalized_l1
from .models import LabParams, encoder_forward, to_lab_layout
from .safetensors import read_safetensors


def run(folder: str) -> dict:
    with open(os.path.join(folder, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    torch.manual_seed(0)
    report = {}
    for case in cases:
        t, _ = read_safetensors(os.path.join(folder, f"{case['name']}.safetensors"))
        out = {}
        for dtype in (torch.float32, torch.float64):  # float64: the rounding-free reference both float32 sides are measured against
            params = LabParams(case["specs"])
            params.load_lab({s["name"]: t[f"param.{s['name']}"] for s in case["specs"]})
            params = params.to(dtype)
            feats = encoder_forward(params, case["encoder"], torch.from_numpy(t["x"]).to(dtype))
            (feats * torch.from_numpy(t["dy"]).to(dtype)).sum().backward()
            out[dtype] = (feats.detach().to(torch.float64).numpy(), {s["name"]: to_lab_layout(params[s["name"]].grad.to(torch.float64)) for s in case["specs"]})
        f32, g32 = out[torch.float32]
        f64, g64 = out[torch.float64]
        names = [s["name"] for s in case["specs"]]
        grads = {n: normalized_l1(g32[n], t[f"grad.{n}"]) for n in names}
        worst = max(grads.items(), key=lambda kv: kv[1])
        report[case["name"]] = {
            "features": normalized_l1(f32, t["features"]), "worstGrad": worst[1], "worstGradLayer": worst[0], "params": len(grads),
            # how far each float32 computation is from float64: the figure's floor for ill-conditioned layers
            "featuresTfjsVs64": normalized_l1(t["features"], f64), "featuresTorchVs64": normalized_l1(f32, f64),
            "gradTfjsVs64": max(normalized_l1(t[f"grad.{n}"], g64[n]) for n in names),
            "gradTorchVs64": max(normalized_l1(g32[n], g64[n]) for n in names),
        }
    return report


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m slidelab.check_models <dir>", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    print(json.dumps(run(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Learning-rate and weight-decay schedules, as src/core/optim/schedule.ts: linear warm-up, then
cosine decay of the learning rate to minLr; weight decay follows a cosine from weightDecay to
weightDecayEnd. Same double arithmetic in the same order (math.cos is the C library's; V8 has
its own: they may differ in the last bit of a double, see check.py's report)."""
from __future__ import annotations

import math


def _cosine(a: float, b: float, t: float) -> float:
    return b + 0.5 * (a - b) * (1 + math.cos(math.pi * min(1, max(0, t))))


def schedule_at(opt: dict, step: int, total_steps: int, warmup_steps: int) -> dict:
    if step < warmup_steps:
        lr = (opt["lr"] * (step + 1)) / warmup_steps
    else:
        lr = _cosine(opt["lr"], opt["minLr"], (step - warmup_steps) / max(1, total_steps - warmup_steps - 1))
    wd = _cosine(opt["weightDecayEnd"], opt["weightDecay"], 1 - step / max(1, total_steps - 1))
    return {"lr": lr, "weightDecay": wd}


def warmup_steps(opt: dict, steps_per_epoch: int) -> int:
    """Math.round(warmupEpochs * stepsPerEpoch) (halves go up, unlike Python's round)."""
    return math.floor(opt["warmupEpochs"] * steps_per_epoch + 0.5)

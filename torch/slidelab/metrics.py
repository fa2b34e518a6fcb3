"""Slide-level metrics as src/core/metrics.ts: ROC AUC (Mann-Whitney, ties half), the ROC curve,
a bootstrapped band keyed by the seed, and the normalised L1 difference."""
from __future__ import annotations

import math

from .rng import STREAM, Rng


def roc_auc(scores, labels) -> float:
    pos = [s for s, l in zip(scores, labels) if l == 1]
    neg = [s for s, l in zip(scores, labels) if l != 1]
    if not pos or not neg:
        return math.nan
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1 if p > n else 0.5 if p == n else 0
    return wins / (len(pos) * len(neg))


def roc_curve(scores, labels) -> list:
    order = sorted(zip(scores, labels), key=lambda t: -t[0])
    P = sum(1 for l in labels if l == 1)
    N = len(labels) - P
    out = [{"fpr": 0.0, "tpr": 0.0, "threshold": math.inf}]
    tp = fp = 0
    for i, (s, l) in enumerate(order):
        if l == 1:
            tp += 1
        else:
            fp += 1
        if i == len(order) - 1 or order[i + 1][0] != s:
            out.append({"fpr": fp / N if N else 0, "tpr": tp / P if P else 0, "threshold": s})
    return out


def roc_bootstrap(scores, labels, rounds: int = 200, seed: int = 0, grid: int = 21) -> dict:
    rng = Rng(seed, STREAM["bootstrap"])
    fprs = [i / (grid - 1) for i in range(grid)]
    tprs = [[] for _ in fprs]
    aucs = []
    for _ in range(rounds):
        idx = [rng.int(len(scores)) for _ in scores]
        s = [scores[i] for i in idx]
        l = [labels[i] for i in idx]
        auc = roc_auc(s, l)
        if math.isnan(auc):
            continue
        aucs.append(auc)
        curve = roc_curve(s, l)
        for g, f in enumerate(fprs):
            tprs[g].append(max([p["tpr"] for p in curve if p["fpr"] <= f] + [0]))

    def q(a, p):
        if not a:
            return math.nan
        srt = sorted(a)
        return srt[min(len(srt) - 1, max(0, math.floor(p * (len(srt) - 1) + 0.5)))]

    return {
        "fpr": fprs,
        "lower": [q(t, 0.025) for t in tprs],
        "upper": [q(t, 0.975) for t in tprs],
        "auc": {"lower": q(aucs, 0.025), "upper": q(aucs, 0.975), "rounds": len(aucs)},
    }


def normalized_l1(a, b) -> float:
    import numpy as np

    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    num = float(np.abs(a - b).sum())
    den = float(np.abs(b).sum())
    return num if den == 0 else num / den

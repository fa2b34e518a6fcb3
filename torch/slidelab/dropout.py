"""The aggregator's inverted-dropout masks, bit for bit as dropoutMask in models/aggregator.ts:
keyed by (seed, step, slot, layer, unit), identical in the N-rank run and the single graph."""
from __future__ import annotations

import numpy as np

from .rng import STREAM, hash32_np

HIDDEN = 512


def dropout_mask(seed: int, step: int, slots: int, layer: int, rate: float) -> np.ndarray:
    """float32 [K, 512]: 0 or 1 / (1 - rate)."""
    if rate <= 0:
        return np.ones((slots, HIDDEN), dtype=np.float32)
    keep = 1 / (1 - rate)
    threshold = rate * 4294967296
    k = np.arange(slots, dtype=np.int64)[:, None]
    u = layer * HIDDEN + np.arange(HIDDEN, dtype=np.int64)[None, :]
    h = hash32_np(seed, STREAM["dropout"], step, k, u).astype(np.float64)
    return np.where(h < threshold, 0.0, keep).astype(np.float32)

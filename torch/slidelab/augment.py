"""Tile preprocessing and augmentation, bit for bit as src/core/augment.ts: keyed by
(seed, step, slot), so one rank and N ranks see identical inputs. The arithmetic is done in
float64 in the same order as the JavaScript and stored as float32, like a Float32Array."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rng import STREAM, Rng


@dataclass(frozen=True)
class TileAugment:
    flip: bool
    rot: int  # 90-degree counter-clockwise rotations, 0..3
    blur: bool


NO_AUGMENT = TileAugment(False, 0, False)


def augment_for(cfg: dict, step: int, slot: int) -> TileAugment:
    rng = Rng(cfg["seed"], STREAM["augment"], step, slot)
    flip = rng.next() < 0.5
    rot = rng.int(4)
    blur = rng.next() < cfg["augment"]["blur"]
    return TileAugment(bool(cfg["augment"]["flip"] and flip), rot if cfg["augment"]["rot90"] else 0, bool(blur))


def input_norm(enc: dict) -> tuple:
    """(mean, std) per channel, parsed from the config's strings as inputNorm (JavaScript's Number)."""
    return [float(x) for x in enc["mean"].split(",")], [float(x) for x in enc["std"].split(",")]


def _blur3x3(src: np.ndarray) -> np.ndarray:
    """Separable [1 2 1]/4 Gaussian blur, edges clamped; [S, S, 3] -> float32 [S, S, 3]."""
    s = src.shape[0]
    x = src.astype(np.float64)
    left = np.clip(np.arange(s) - 1, 0, s - 1)
    right = np.clip(np.arange(s) + 1, 0, s - 1)
    h = ((x[:, left] + 2 * x + x[:, right]) / 4).astype(np.float32).astype(np.float64)
    return ((h[left, :] + 2 * h + h[right, :]) / 4).astype(np.float32)


def source_index(size: int, aug: TileAugment) -> tuple:
    """(sy, sx) [S, S]: output pixel (y, x) reads the source at the inverse of (flip, then rotate)."""
    y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    sx, sy = x.copy(), y.copy()
    for _ in range(aug.rot):
        sx, sy = size - 1 - sy, sx
    if aug.flip:
        sx = size - 1 - sx
    return sy, sx


def preprocess_tile(src: np.ndarray, aug: TileAugment, norm: tuple) -> np.ndarray:
    """uint8 [S, S, 3] -> float32 [S, S, 3]: (x / 255 - mean) / std computed as x * scale - shift."""
    mean, std = norm
    size = src.shape[0]
    scale = np.array([1 / (255 * sd) for sd in std], dtype=np.float64)
    shift = np.array([m / std[c] for c, m in enumerate(mean)], dtype=np.float64)
    tmp = _blur3x3(src) if aug.blur else src
    sy, sx = source_index(size, aug)
    picked = tmp[sy, sx].astype(np.float64)  # [S, S, 3]
    return (picked * scale - shift).astype(np.float32)


def preprocess_batch(pixels: np.ndarray, augs: list, norm: tuple) -> np.ndarray:
    """uint8 [n, S, S, 3] and n augmentations -> float32 [n, S, S, 3] (the lab's NHWC layout)."""
    out = np.empty(pixels.shape, dtype=np.float32)
    for i, aug in enumerate(augs):
        out[i] = preprocess_tile(pixels[i], aug, norm)
    return out

"""The sampler, bit for bit as src/core/sampler.ts: one slide per step, K tile slots per slide,
split across N encoder ranks. Every process derives the same plan from (seed, step)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .rng import STREAM, Rng, hash32


@dataclass(frozen=True)
class SlideEntry:
    id: str
    label: int
    split: str  # 'train' | 'val'
    num_tiles: int

    @staticmethod
    def from_json(d: dict) -> "SlideEntry":
        return SlideEntry(str(d["id"]), int(d["label"]), str(d["split"]), int(d["numTiles"]))


@dataclass
class StepPlan:
    step: int
    epoch: int
    slide: SlideEntry
    tile_indices: np.ndarray  # int32 [K]


def epoch_order(train: list, seed: int, epoch: int) -> list:
    """Order of the training slides in one epoch: a permutation keyed by (seed, epoch)."""
    return Rng(seed, STREAM["slideOrder"], epoch).shuffle(list(train))


def sample_tiles(num_tiles: int, k: int, seed: int, step: int) -> np.ndarray:
    """K tile indices of one slide at one step: K distinct tiles (partial Fisher-Yates) when the
    slide has at least K, else every tile once and then uniform draws with replacement."""
    if num_tiles < 1:
        raise ValueError("cannot sample tiles from a slide without tissue tiles")
    rng = Rng(seed, STREAM["tileList"], step)
    out = np.zeros(k, dtype=np.int32)
    if num_tiles >= k:
        pool = list(range(num_tiles))
        for i in range(k):
            j = i + rng.int(num_tiles - i)
            pool[i], pool[j] = pool[j], pool[i]
            out[i] = pool[i]
        return out
    every = rng.shuffle(list(range(num_tiles)))
    for i in range(k):
        out[i] = every[i] if i < num_tiles else rng.int(num_tiles)
    return out


class Sampler:
    def __init__(self, slides: list, seed: int, k: int):
        self.seed = seed
        self.k = k
        self.train = [s for s in slides if s.split == "train" and s.num_tiles > 0]
        if not self.train:
            raise ValueError("the data set has no training slide with tissue tiles")
        self._orders: dict = {}

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train)

    def plan(self, step: int) -> StepPlan:
        spe = len(self.train)
        epoch = step // spe
        if epoch not in self._orders:
            self._orders = {epoch: epoch_order(self.train, self.seed, epoch)}
        slide = self._orders[epoch][step % spe]
        return StepPlan(step, epoch, slide, sample_tiles(slide.num_tiles, self.k, self.seed, step))


def rank_slots(k: int, rank: int, ranks: int) -> np.ndarray:
    """Slots of encoder rank `rank` (0-based, = torch rank - 1) of `ranks`: rank, rank+N, ..."""
    n = math.ceil((k - rank) / ranks) if rank < k else 0
    return np.array([rank + i * ranks for i in range(n)], dtype=np.int32)


def eval_key(seed: int, slide_index: int) -> int:
    """A deterministic key for evaluation plans, distinct from any training step."""
    return hash32(seed, 0x0E7A1, slide_index) & 0x7FFFFFFF

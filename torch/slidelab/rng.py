"""Counter-based randomness, bit for bit as src/core/rng.ts.

Every random choice is a pure function of a key such as (seed, step, tile slot), never of which
rank asks. JavaScript's int32 arithmetic (Math.imul, <<, >>>, |0) is reproduced on unsigned
32-bit values; the float conversion is the same k / 2**32 (exact in a double).
Scalar functions use Python ints; the `*_np` variants are vectorised over numpy arrays.
"""
from __future__ import annotations

import math

import numpy as np

M32 = 0xFFFFFFFF
TWO32 = 4294967296.0

# Domain tags so that keys for different purposes never collide (Stream in rng.ts).
STREAM = {
    "init": 1,
    "slideOrder": 2,
    "tileList": 3,
    "augment": 4,
    "dropout": 5,
    "synthetic": 6,
    "bootstrap": 7,
}


def _imul(a: int, b: int) -> int:
    return (a * b) & M32


def hash32(*words: int) -> int:
    """murmur3 finaliser per word, as hash32 in rng.ts. Words are taken modulo 2**32 (ToInt32)."""
    h = 0x9E3779B9
    for w in words:
        k = _imul(int(w) & M32, 0xCC9E2D51)
        k = ((k << 15) | (k >> 17)) & M32
        k = _imul(k, 0x1B873593)
        h ^= k
        h = ((h << 13) | (h >> 19)) & M32
        h = (_imul(h, 5) + 0xE6546B64) & M32
    h ^= h >> 16
    h = _imul(h, 0x85EBCA6B)
    h ^= h >> 13
    h = _imul(h, 0xC2B2AE35)
    h ^= h >> 16
    return h


def string_key(s: str) -> int:
    """FNV-1a over the string's UTF-16 code units (JavaScript's charCodeAt), as stringKey."""
    h = 0x811C9DC5
    units = s.encode("utf-16-le")
    for i in range(0, len(units), 2):
        h = _imul(h ^ (units[i] | (units[i + 1] << 8)), 0x01000193)
    return h


def _mix(t: int) -> float:
    t = _imul(t ^ (t >> 15), t | 1)
    t ^= (t + _imul(t ^ (t >> 7), t | 61)) & M32
    return ((t ^ (t >> 14)) & M32) / TWO32


class Rng:
    """mulberry32 seeded from hash32(key), as Rng in rng.ts."""

    def __init__(self, *key: int):
        self.state = hash32(*key)

    def next(self) -> float:
        """Uniform in [0, 1)."""
        self.state = (self.state + 0x6D2B79F5) & M32
        return _mix(self.state)

    def int(self, n: int) -> int:
        """Integer in [0, n): floor(next() * n)."""
        return math.floor(self.next() * n)

    def normal(self) -> float:
        """Box-Muller as rng.ts. math.log/cos may differ from V8's in the last bit of a double
        (the lab's initial weights therefore travel in init.safetensors, not through this)."""
        u = 1 - self.next()
        v = self.next()
        return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * v)

    def shuffle(self, a: list) -> list:
        """Fisher-Yates in place, as Rng.shuffle."""
        for i in range(len(a) - 1, 0, -1):
            j = self.int(i + 1)
            a[i], a[j] = a[j], a[i]
        return a

    def take(self, n: int) -> np.ndarray:
        """The next n values of next() at once (float64 [n]); mulberry32's state is a counter."""
        out = next_np(self.state, n)
        self.state = (self.state + n * 0x6D2B79F5) & M32
        return out


# ---- vectorised (numpy, uint64 holding 32-bit values) ----

def _u(x) -> np.ndarray:
    return np.asarray(x, dtype=np.uint64) & np.uint64(M32)


def _imul_np(a: np.ndarray, b) -> np.ndarray:
    return (a * np.uint64(b) if np.isscalar(b) else a * b) & np.uint64(M32)


def _rotl_np(x: np.ndarray, r: int) -> np.ndarray:
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & np.uint64(M32)


def hash32_np(*words) -> np.ndarray:
    """hash32 over broadcast numpy arrays of words; returns uint64 values < 2**32."""
    arrays = np.broadcast_arrays(*[np.asarray(w, dtype=np.int64) for w in words])
    h = np.full(arrays[0].shape, 0x9E3779B9, dtype=np.uint64)
    for w in arrays:
        k = _imul_np(_u(w.astype(np.int64) & M32), 0xCC9E2D51)
        k = _rotl_np(k, 15)
        k = _imul_np(k, 0x1B873593)
        h ^= k
        h = _rotl_np(h, 13)
        h = (_imul_np(h, 5) + np.uint64(0xE6546B64)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    h = _imul_np(h, 0x85EBCA6B)
    h ^= h >> np.uint64(13)
    h = _imul_np(h, 0xC2B2AE35)
    h ^= h >> np.uint64(16)
    return h


def next_np(state: int, n: int) -> np.ndarray:
    """The n values a Rng with `state` yields next (float64 [n])."""
    i = np.arange(1, n + 1, dtype=np.uint64)
    t = (np.uint64(state) + i * np.uint64(0x6D2B79F5)) & np.uint64(M32)
    t1 = _imul_np(t ^ (t >> np.uint64(15)), t | np.uint64(1))
    t2 = t1 ^ ((t1 + _imul_np(t1 ^ (t1 >> np.uint64(7)), t1 | np.uint64(61))) & np.uint64(M32))
    return ((t2 ^ (t2 >> np.uint64(14))) & np.uint64(M32)).astype(np.float64) / TWO32

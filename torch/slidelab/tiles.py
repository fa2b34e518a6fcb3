"""Where tile pixels come from, as src/core/tiles.ts.

SyntheticTiles paints the lab's synthetic tiles bit for bit (pink stroma-like noise with nuclei;
lesion tiles on positive slides get dense dark-purple clusters) from the shared counter-based
generator. SlideFileTiles reads tissue tiles of whole-slide files from the tile grids the lab's
export wrote (see README "Scaling out": decoders and resampling differ from the browser's).
"""
from __future__ import annotations

import math

import numpy as np

from .rng import STREAM, TWO32, Rng, hash32, string_key
from .sampler import SlideEntry


def js_round(x: float) -> int:
    """JavaScript's Math.round (halves go up)."""
    return math.floor(x + 0.5)


def synthetic_slides(count: int, seed: int, tiles_per_slide: int = 64, val_fraction: float = 0.25) -> list:
    """The lab's deterministic synthetic data set (syntheticSlides in tiles.ts)."""
    rng = Rng(seed, STREAM["synthetic"], count)
    out = []
    n_train = js_round(count * (1 - val_fraction))
    for i in range(count):
        num = max(4, js_round(tiles_per_slide * (0.5 + rng.next())))
        out.append(SlideEntry(f"synthetic-{i:03d}", i % 2, "train" if i < n_train else "val", num))
    return out


class SyntheticTiles:
    def __init__(self, seed: int, slides: list, lesion_fraction: float = 0.2):
        self.seed = seed
        self.lesion_fraction = lesion_fraction
        self.labels = {s.id: s.label for s in slides}

    def is_lesion(self, slide_id: str, tile: int) -> bool:
        return self.labels.get(slide_id) == 1 and hash32(self.seed, STREAM["synthetic"], string_key(slide_id), int(tile)) / TWO32 < self.lesion_fraction

    def read(self, slide_id: str, tile_indices, size: int) -> np.ndarray:
        """uint8 [n, S, S, 3] RGB of tiles `tile_indices` of one slide."""
        if slide_id not in self.labels:
            raise KeyError(f"unknown slide {slide_id}")
        idx = [int(t) for t in tile_indices]
        out = np.zeros((len(idx), size, size, 3), dtype=np.uint8)
        for n, tile in enumerate(idx):
            self._paint(out[n], size, slide_id, tile)
        return out

    def _paint(self, px: np.ndarray, size: int, slide_id: str, tile: int) -> None:
        rng = Rng(self.seed, STREAM["synthetic"], string_key(slide_id), tile)
        noise = rng.take(size * size) * 30  # n = next() * 30 per pixel
        flat = px.reshape(size * size, 3)
        # Uint8Array stores ToUint8(225 - n): truncation (the values lie in (195, 225]).
        flat[:, 0] = np.trunc(225 - noise).astype(np.uint8)
        flat[:, 1] = np.trunc(170 - noise).astype(np.uint8)
        flat[:, 2] = np.trunc(200 - noise).astype(np.uint8)
        lesion = self.is_lesion(slide_id, tile)
        blobs = 12 if lesion else 3
        radius = max(1.0, size / (10 if lesion else 16))
        colour = (70, 30, 110) if lesion else (120, 80, 160)
        centres = rng.take(2 * blobs) * size  # cx = next() * size, cy = next() * size
        r2 = radius * radius
        for b in range(blobs):
            cx = centres[2 * b]
            cy = centres[2 * b + 1]
            # for (y = floor(cy - r); y <= cy + r; y++): integer y <= cy + r  <=>  y <= floor(cy + r)
            ys = np.arange(math.floor(cy - radius), math.floor(cy + radius) + 1)
            xs = np.arange(math.floor(cx - radius), math.floor(cx + radius) + 1)
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            dx = xx.astype(np.float64) - cx
            dy = yy.astype(np.float64) - cy
            inside = (xx >= 0) & (yy >= 0) & (xx < size) & (yy < size) & ~(dx * dx + dy * dy > r2)
            px[yy[inside], xx[inside]] = colour


class SlideFileTiles:
    """Tiles of whole-slide files, from the tile grids the lab planned (slides.json, written by the
    export): engine tile index i is grid['tiles'][i], a level-0 rectangle [x, y, w, h] read at the
    grid's pyramid level as readTile in src/slide/tiles.ts does (the region at the level's scale;
    when no level matches the target resolution, the fractional rectangle resampled to the grid's
    tile size: area average when shrinking, bilinear when enlarging), then resized to the model's
    tile size. Files are read with openslide-python when the host has it (`pip install
    openslide-python openslide-bin`, any real slide), else with Pillow, which decodes a whole
    pyramid level (small slides such as the demo's only). The pixels are close to, not identical
    with, the lab's: another JPEG decoder (libjpeg-turbo), Pillow's resampling filters."""

    MAX_PIL_PIXELS = 200_000_000

    def __init__(self, slides: dict, base_dir: str, root: str | None = None):
        self.slides = slides  # id -> {path, grid: {...}}
        self.base_dir = base_dir
        self.root = root
        self._open: dict = {}

    def _path(self, entry: dict) -> str:
        import os

        path = entry["path"]
        if self.root:
            return os.path.join(self.root, os.path.basename(path))
        return path if os.path.isabs(path) else os.path.join(self.base_dir, path)

    def _handle(self, slide_id: str, level: int):
        key = (slide_id, level)
        if key in self._open:
            return self._open[key]
        path = self._path(self.slides[slide_id])
        try:
            import openslide  # type: ignore

            handle = ("openslide", openslide.OpenSlide(path))
        except ImportError:
            from PIL import Image

            img = Image.open(path)
            img.seek(level)  # pyramid levels as TIFF pages (libvips, Aperio); not SubIFDs
            if img.size[0] * img.size[1] > self.MAX_PIL_PIXELS:
                raise RuntimeError(f"{path}: level {level} is {img.size[0]}x{img.size[1]} pixels; reading it needs openslide-python "
                                   "(pip install openslide-python openslide-bin)")
            handle = ("pil", np.asarray(img.convert("RGB"), dtype=np.uint8))
        if len(self._open) >= 4:
            old = self._open.pop(next(iter(self._open)))
            if old[0] == "openslide":
                old[1].close()
        self._open[key] = handle
        return handle

    def _region(self, slide_id: str, level: int, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        """uint8 [h, w, 3] of the level's pixels [x0, x0 + w) x [y0, y0 + h), zeros outside."""
        kind, obj = self._handle(slide_id, level)
        if kind == "openslide":
            down = float(obj.level_downsamples[level])
            img = obj.read_region((int(round(x0 * down)), int(round(y0 * down))), level, (w, h)).convert("RGB")
            return np.asarray(img, dtype=np.uint8)
        out = np.zeros((h, w, 3), dtype=np.uint8)
        H, W = obj.shape[:2]
        ya, yb, xa, xb = max(0, y0), min(H, y0 + h), max(0, x0), min(W, x0 + w)
        if yb > ya and xb > xa:
            out[ya - y0 : yb - y0, xa - x0 : xb - x0] = obj[ya:yb, xa:xb]
        return out

    @staticmethod
    def _resample(px: np.ndarray, box: tuple, size: int) -> np.ndarray:
        from PIL import Image

        sw = box[2] - box[0]
        flt = Image.BOX if sw > size else Image.BILINEAR  # area average when shrinking, as resampleRect
        return np.asarray(Image.fromarray(px).resize((size, size), flt, box=box), dtype=np.uint8)

    def read(self, slide_id: str, tile_indices, size: int) -> np.ndarray:
        grid = self.slides[slide_id]["grid"]
        g = int(grid["tileSize"])
        level = int(grid["level"])
        sx, sy = float(grid["levelScaleX"]), float(grid["levelScaleY"])
        out = np.zeros((len(tile_indices), size, size, 3), dtype=np.uint8)
        for n, t in enumerate(tile_indices):
            x, y, w, h = grid["tiles"][int(t)]
            lx, ly, lw, lh = x * sx, y * sy, w * sx, h * sy
            if not grid["resample"]:
                px = self._region(slide_id, level, math.floor(lx + 0.5), math.floor(ly + 0.5), g, g)
            else:
                x0, y0 = math.floor(lx), math.floor(ly)
                rw, rh = math.ceil(lx + lw) - x0, math.ceil(ly + lh) - y0
                px = self._resample(self._region(slide_id, level, x0, y0, rw, rh), (lx - x0, ly - y0, lx - x0 + lw, ly - y0 + lh), g)
            out[n] = px if g == size else self._resample(px, (0, 0, g, g), size)
        return out

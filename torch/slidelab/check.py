"""Bit-exactness check of the numpy ports against values the TypeScript side computed.

    python -m slidelab.check vectors.json   ->  prints a JSON report, exit 1 on any mismatch

vectors.json (written by scripts/torch-equivalence.test.ts): hash32 and Rng sequences, the
sampler's plans and rank slots, the synthetic data set, synthetic tile bytes, augmentations and
preprocessed float32 tiles, dropout masks and the schedules. Float32 data travels as base64 of
the little-endian bytes so nothing is lost in JSON.
"""
from __future__ import annotations

import base64
import json
import sys

import numpy as np

from . import augment, rng, sampler, schedule, tiles
from .dropout import dropout_mask


def _f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


def _u8(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.uint8)


def run(doc: dict) -> dict:
    report: dict = {}

    def record(name: str, total: int, bad: int, first=None):
        report[name] = {"checked": total, "mismatches": bad, **({"first": first} if first is not None and bad else {})}

    bad = [(w, h) for w, h in doc["hash32"] if rng.hash32(*w) != h]
    record("hash32", len(doc["hash32"]), len(bad), bad[:1])
    bad = [(w, h) for w, h in doc["hash32"] if int(rng.hash32_np(*[np.array([x]) for x in w])[0]) != h]
    record("hash32_np", len(doc["hash32"]), len(bad), bad[:1])
    bad = [(s, h) for s, h in doc["stringKey"] if rng.string_key(s) != h]
    record("stringKey", len(doc["stringKey"]), len(bad), bad[:1])
    n_bad = n_all = 0
    for case in doc["rng"]:
        r = rng.Rng(*case["key"])
        got = [r.next() for _ in case["next"]]
        n_all += len(got)
        n_bad += sum(1 for a, b in zip(got, case["next"]) if a != b)
        r2 = rng.Rng(*case["key"])
        got2 = r2.take(len(case["next"])).tolist()
        n_bad += sum(1 for a, b in zip(got2, case["next"]) if a != b)
        r3 = rng.Rng(*case["key"])
        ints = [r3.int(case["intN"]) for _ in case["ints"]]
        n_bad += sum(1 for a, b in zip(ints, case["ints"]) if a != b)
        r4 = rng.Rng(*case["key"])
        normals = [r4.normal() for _ in case["normals"]]
        report.setdefault("normalMaxAbsDiff", 0.0)
        report["normalMaxAbsDiff"] = max(report["normalMaxAbsDiff"], max(abs(a - b) for a, b in zip(normals, case["normals"])))
        report.setdefault("normalFloat32Mismatches", 0)
        report["normalFloat32Mismatches"] += int(np.sum(np.float32(normals) != np.float32(case["normals"])))
    record("rng", n_all, n_bad)

    slides = [sampler.SlideEntry.from_json(s) for s in doc["slides"]]
    syn = tiles.synthetic_slides(doc["syntheticArgs"]["count"], doc["syntheticArgs"]["seed"], doc["syntheticArgs"]["tilesPerSlide"])
    record("syntheticSlides", len(slides), sum(1 for a, b in zip(syn, slides) if a != b) + abs(len(syn) - len(slides)))
    smp = sampler.Sampler(slides, doc["seed"], doc["k"])
    n_bad = 0
    for p in doc["plans"]:
        plan = smp.plan(p["step"])
        if plan.slide.id != p["slide"] or plan.epoch != p["epoch"] or plan.tile_indices.tolist() != p["tileIndices"]:
            n_bad += 1
    record("plans", len(doc["plans"]), n_bad)
    n_bad = 0
    for c in doc["sampleTiles"]:
        if sampler.sample_tiles(c["numTiles"], c["k"], c["seed"], c["step"]).tolist() != c["out"]:
            n_bad += 1
    record("sampleTiles", len(doc["sampleTiles"]), n_bad)
    n_bad = sum(1 for c in doc["rankSlots"] if sampler.rank_slots(c["k"], c["rank"], c["ranks"]).tolist() != c["out"])
    record("rankSlots", len(doc["rankSlots"]), n_bad)
    n_bad = sum(1 for c in doc["evalKey"] if sampler.eval_key(c["seed"], c["i"]) != c["out"])
    record("evalKey", len(doc["evalKey"]), n_bad)

    src = tiles.SyntheticTiles(doc["seed"], slides, doc.get("lesionFraction", 0.2))
    n_bad = n_all = 0
    first = None
    for c in doc["tiles"]:
        got = src.read(c["slide"], c["tiles"], c["size"]).reshape(-1)
        want = _u8(c["bytes"])
        diff = int(np.sum(got != want))
        n_all += want.size
        n_bad += diff
        if diff and first is None:
            first = {"slide": c["slide"], "size": c["size"], "lesion": [src.is_lesion(c["slide"], t) for t in c["tiles"]]}
    record("syntheticTileBytes", n_all, n_bad, first)
    lesions = sum(1 for c in doc["lesions"] if src.is_lesion(c["slide"], c["tile"]) != c["lesion"])
    record("isLesion", len(doc["lesions"]), lesions)

    cfg = doc["config"]
    norm = augment.input_norm(cfg["encoder"])
    n_bad = n_all = 0
    for c in doc["augments"]:
        a = augment.augment_for(cfg, c["step"], c["slot"])
        if (a.flip, a.rot, a.blur) != (c["flip"], c["rot"], c["blur"]):
            n_bad += 1
        n_all += 1
    record("augmentFor", n_all, n_bad)
    n_bad = n_all = 0
    for c in doc["preprocess"]:
        px = _u8(c["src"]).reshape(c["size"], c["size"], 3)
        got = augment.preprocess_tile(px, augment.TileAugment(c["flip"], c["rot"], c["blur"]), (c["mean"], c["std"])).reshape(-1)
        want = _f32(c["out"])
        n_all += want.size
        n_bad += int(np.sum(got.view(np.uint32) != want.view(np.uint32)))
    record("preprocessTileFloat32Bits", n_all, n_bad)
    n_bad = n_all = 0
    for c in doc["dropout"]:
        got = dropout_mask(c["seed"], c["step"], c["slots"], c["layer"], c["rate"]).reshape(-1)
        want = _f32(c["out"])
        n_all += want.size
        n_bad += int(np.sum(got.view(np.uint32) != want.view(np.uint32)))
    record("dropoutMaskFloat32Bits", n_all, n_bad)
    n_bad = 0
    worst = 0.0
    for c in doc["schedule"]:
        h = schedule.schedule_at(c["opt"], c["step"], c["total"], c["warmup"])
        if h["lr"] != c["lr"] or h["weightDecay"] != c["weightDecay"]:
            n_bad += 1
            worst = max(worst, abs(h["lr"] - c["lr"]) / max(abs(c["lr"]), 1e-300), abs(h["weightDecay"] - c["weightDecay"]) / max(abs(c["weightDecay"]), 1e-300))
    record("schedule", len(doc["schedule"]), n_bad)
    report["scheduleWorstRelDiff"] = worst
    n_bad = sum(1 for t, v in doc["pow"]["values"] if doc["pow"]["base"] ** t != v)
    record("betaPow", len(doc["pow"]["values"]), n_bad)
    report["pass"] = all(v["mismatches"] == 0 for k, v in report.items() if isinstance(v, dict) and k not in ("betaPow", "schedule"))
    return report


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m slidelab.check vectors.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        report = run(json.load(f))
    print(json.dumps(report))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())

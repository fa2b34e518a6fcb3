"""End-to-end slide training on torch.distributed, the lab's engine (src/core/engine.ts + rank.ts)
as processes:

    torchrun --nproc_per_node N+1 -m slidelab.train <run dir> [--steps S] --out <dir>

Process 0 runs the aggregator (the paper's process 0); processes 1..N are encoder replicas. Each
step every process derives the same slide and K tiles from the seed; encoder rank r takes slots
r-1, r-1+N, ... (rankSlots), builds its tiles bit-identically to the lab (synthetic tiles,
augmentation keyed by (seed, step, slot), float32 normalisation) and encodes them; features are
GATHERED to process 0 with their slot indices; process 0 runs the aggregator forward, the
class-weighted loss with the lab's dropout masks, backward and AdamW, and SCATTERS the rows of
dL/dFeatures back; each encoder rank backpropagates sum(features * grad); the encoder gradients are
SUMMED with an all_reduce over the encoder ranks' subgroup (no DDP, no 1/N) and every replica
applies the same AdamW. gloo on CPU, NCCL when CUDA is available.

Output (--out): checkpoint.safetensors (every parameter in the lab's names and layouts),
optimizer.safetensors (AdamW moments), model.json + weights.bin (the lab's tfjs weights format,
what its "Import weights" reads), metrics.json (the lab's metrics JSON). --trace <dir> also writes
each step's inputs, features, feature gradients, gradients and parameters (for the proof test).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.distributed as dist

from . import augment, metrics
from .dropout import HIDDEN, dropout_mask
from .models import LabParams, aggregator_forward, encoder_forward, to_lab_layout, tracked_encoder_layers, weighted_cross_entropy, TRACKED_AGGREGATOR_LAYER
from .optim import AdamW, checksum, lr_scales_of
from .safetensors import read_safetensors, write_safetensors
from .sampler import SlideEntry, Sampler, eval_key, rank_slots, sample_tiles
from .schedule import schedule_at, warmup_steps
from .tiles import SlideFileTiles, SyntheticTiles

PHASES = ["decode", "forward", "gather", "aggregator", "scatter", "recompute", "reduce", "optimizer"]


class ReplicaDriftError(RuntimeError):
    pass


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m slidelab.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", help="a run directory written by `npm run export:torch`")
    ap.add_argument("--out", default=None, help="where checkpoints and metrics go (default <run dir>/result)")
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps (default: the config's epochs)")
    ap.add_argument("--backend", choices=["gloo", "nccl"], default=None, help="default: nccl when CUDA is available, else gloo")
    ap.add_argument("--cpu", action="store_true", help="compute on the CPU even when CUDA is available")
    ap.add_argument("--recompute", action="store_true", help="as the lab: encode without a graph, recompute in micro-batches at backward (memory O(micro-batch))")
    ap.add_argument("--no-eval", action="store_true", help="skip validation (at epoch ends and after the last step)")
    ap.add_argument("--trace", default=None, help="write each step's tensors here (safetensors per step and process)")
    ap.add_argument("--average-gradients", action="store_true", help="NEGATIVE CONTROL: average the encoder gradients over the ranks (DDP's default) instead of summing them; breaks equivalence")
    ap.add_argument("--drift-tolerance", type=float, default=1e-6)
    ap.add_argument("--slides-root", default=None, help="slide files: look for each file (by its name) in this folder instead of the exported path")
    ap.add_argument("--resume", default=None, help="continue from an earlier --out directory (checkpoint, optimizer state, metrics); every draw is keyed by the step, so the run goes on as if never stopped")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 convolutions and matmuls on NVIDIA GPUs (faster; ~1e-3 relative, not the lab's float32)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process on the CPU (default: cores / processes)")
    return ap.parse_args(argv)


class Run:
    """The exported run directory: config, slides, parameter specs, initial weights."""

    def __init__(self, path: str, slides_root: str | None = None):
        self.path = path
        self.slides_root = slides_root

        def load(name):
            with open(os.path.join(path, name), encoding="utf-8") as f:
                return json.load(f)

        doc = load("config.json")
        if doc.get("kind") != "slide-lab-torch-run":
            raise ValueError(f"{path}/config.json is not a Slide Lab torch run (kind {doc.get('kind')!r})")
        self.doc = doc
        self.cfg = doc["config"]
        self.hash = doc.get("hash", "")
        self.data = load("slides.json")
        self.slides = [SlideEntry.from_json(s) for s in self.data["slides"]]
        specs = load("params.json")
        self.enc_specs = specs["encoder"]
        self.agg_specs = specs["aggregator"]
        self.feature_dim = int(specs["featureDim"])
        self.init_path = os.path.join(path, "init.safetensors")

    def tile_source(self):
        if self.data["kind"] == "synthetic":
            return SyntheticTiles(self.data["seed"], self.slides, self.data.get("lesionFraction", 0.2))
        return SlideFileTiles({s["id"]: s for s in self.data["slides"]}, self.path, self.slides_root)


def js_f32(x) -> float:
    return float(np.float32(x))


class Trainer:
    def __init__(self, args, run: Run):
        self.args = args
        self.run = run
        self.cfg = run.cfg
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.n = self.world - 1
        if self.n < 1:
            raise SystemExit("slidelab.train needs at least 2 processes: 1 aggregator + N encoder ranks (torchrun --nproc_per_node N+1)")
        self.backend = dist.get_backend()
        use_cuda = torch.cuda.is_available() and not args.cpu
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", self.rank))
            gpus = torch.cuda.device_count()
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", self.world))
            if self.backend == "nccl" and local_world > gpus:
                raise SystemExit(f"NCCL needs one GPU per process: {local_world} processes on this node but {gpus} GPUs "
                                 f"(use --nproc_per_node {gpus}, i.e. {gpus - 1} encoder ranks, or --backend gloo to share GPUs)")
            self.device = torch.device("cuda", local % gpus)
            torch.cuda.set_device(self.device)
            # the lab computes in float32: no TF32 unless asked for
            torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
            torch.backends.cudnn.allow_tf32 = bool(args.tf32)
        else:
            self.device = torch.device("cpu")
        # nccl talks CUDA tensors; gloo CPU tensors
        self.comm = self.device if self.backend == "nccl" else torch.device("cpu")
        self.enc_group = dist.new_group(list(range(1, self.world)))
        self.sampler = Sampler(run.slides, self.cfg["seed"], self.cfg["tiles"])
        self.spe = self.sampler.steps_per_epoch
        self.total = self.cfg["epochs"] * self.spe
        self.warmup = warmup_steps(self.cfg["optimizer"], self.spe)
        self.steps = self.total if args.steps is None else min(args.steps, self.total)
        self.d = run.feature_dim
        self.k = self.cfg["tiles"]
        self.frozen = bool(self.cfg["frozenEncoder"])
        init, _ = read_safetensors(run.init_path)
        if self.rank == 0:
            self.params = LabParams(run.agg_specs, self.device)
            self.params.load_lab(init)
            self.opt = AdamW(self.params, self.cfg["optimizer"])
        else:
            self.erank = self.rank - 1  # the lab's rank index
            self.scales = lr_scales_of(run.enc_specs)
            self.params = LabParams(run.enc_specs, self.device, trainable=not self.frozen)
            self.params.load_lab(init)
            for s in run.enc_specs:  # frozen layers get no gradient at all
                self.params[s["name"]].requires_grad_(not self.frozen and self.scales.get(s["name"], 1) > 0)
            self.opt = None if self.frozen else AdamW(self.params, self.cfg["optimizer"], self.scales)
            self.tiles = run.tile_source()
            self.norm = augment.input_norm(self.cfg["encoder"])
            self.pool = ThreadPoolExecutor(max_workers=1)
            self.ahead = None
        self.history = []
        self.evals = []
        self.start = 0
        if args.resume:
            self.resume(args.resume)
        if args.trace and self.rank in (0, 1):
            os.makedirs(args.trace, exist_ok=True)
        dist.barrier()

    def resume(self, folder: str) -> None:
        ckpt, meta = read_safetensors(os.path.join(folder, "checkpoint.safetensors"))
        self.start = int(meta.get("slide-lab.step", "0"))
        self.params.load_lab(ckpt)
        opt, ometa = read_safetensors(os.path.join(folder, "optimizer.safetensors"))
        if self.opt is not None:
            self.opt.load_lab_state(int(ometa["aggregator.t" if self.rank == 0 else "encoder.t"]), opt)
        if self.rank == 0:
            with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as f:
                m = json.load(f)
            self.history = [s for s in m["steps"] if s["step"] < self.start]
            self.evals = [e for e in m["evals"] if e["step"] <= self.start]
        else:
            self.history = [{"step": i} for i in range(self.start)]

    # ---- communication ----

    def gather_features(self, feats: torch.Tensor | None, slots: np.ndarray | None, k: int) -> tuple:
        """Encoder ranks send [k_r, D] rows and their slots; process 0 gets [K, D] in slot order."""
        maxk = math.ceil(k / self.n)
        buf = torch.zeros(maxk, self.d, dtype=torch.float32, device=self.comm)
        sl = torch.full((maxk,), -1, dtype=torch.int64, device=self.comm)
        if self.rank > 0 and len(slots):
            buf[: len(slots)] = feats.detach().to(self.comm)
            sl[: len(slots)] = torch.from_numpy(slots.astype(np.int64)).to(self.comm)
        if self.rank == 0:
            bufs = [torch.zeros_like(buf) for _ in range(self.world)]
            sls = [torch.zeros_like(sl) for _ in range(self.world)]
            dist.gather(buf, bufs, dst=0)
            dist.gather(sl, sls, dst=0)
            out = torch.zeros(k, self.d, dtype=torch.float32, device=self.device)
            owner = np.full(k, -1)
            for r in range(1, self.world):
                idx = sls[r].to("cpu").numpy()
                rows = idx >= 0
                out[torch.from_numpy(idx[rows]).to(self.device)] = bufs[r][torch.from_numpy(np.nonzero(rows)[0]).to(self.comm)].to(self.device)
                owner[idx[rows]] = r
            if (owner < 0).any():
                raise RuntimeError(f"slots {np.nonzero(owner < 0)[0].tolist()} came back from no rank")
            return out, owner
        dist.gather(buf, None, dst=0)
        dist.gather(sl, None, dst=0)
        return None, None

    def scatter_grads(self, grad: torch.Tensor | None, owner_slots: list | None, k: int) -> torch.Tensor:
        """Process 0 sends each encoder rank the rows of dL/dFeatures of its slots ([k_r, D])."""
        maxk = math.ceil(k / self.n)
        out = torch.zeros(maxk, self.d, dtype=torch.float32, device=self.comm)
        if self.rank == 0:
            chunks = [torch.zeros_like(out)]
            for r in range(1, self.world):
                c = torch.zeros_like(out)
                slots = owner_slots[r]
                if len(slots):
                    c[: len(slots)] = grad[torch.from_numpy(slots.astype(np.int64)).to(grad.device)].to(self.comm)
                chunks.append(c)
            dist.scatter(out, chunks, src=0)
        else:
            dist.scatter(out, None, src=0)
        return out

    # ---- encoder side ----

    def encode(self, step: int, slide: SlideEntry, tile_indices: np.ndarray, train: bool):
        slots = rank_slots(len(tile_indices), self.erank, self.n)
        t0 = time.perf_counter()
        pixels = self.read_tiles(slide.id, tile_indices[slots])
        augs = [augment.augment_for(self.cfg, step, int(s)) if train else augment.NO_AUGMENT for s in slots]
        x = augment.preprocess_batch(pixels, augs, self.norm)  # float32 [k_r, S, S, 3]
        decode = time.perf_counter() - t0
        t0 = time.perf_counter()
        xt = torch.from_numpy(x).to(self.device)
        m = self.cfg["microBatch"]
        keep_graph = train and not self.frozen and not self.args.recompute
        parts = []
        with torch.set_grad_enabled(keep_graph):
            for start in range(0, len(slots), m):
                parts.append(encoder_forward(self.params, self.cfg["encoder"], xt[start : start + m]))
        feats = torch.cat(parts) if parts else torch.zeros(0, self.d, device=self.device)
        self._sync()
        return slots, x, xt, feats, decode, time.perf_counter() - t0

    def read_tiles(self, slide_id: str, indices: np.ndarray) -> np.ndarray:
        """uint8 [n, S, S, 3]; taken from the read-ahead when it fetched exactly these tiles."""
        key = (slide_id, tuple(int(i) for i in indices))
        if self.ahead is not None and self.ahead[0] == key:
            ahead, self.ahead = self.ahead, None
            return ahead[1].result()
        return self.tiles.read(slide_id, indices, self.cfg["tileSize"])

    def prefetch(self, step: int) -> None:
        """Starts reading this rank's tiles of training step `step` in a thread (as the lab's ranks do)."""
        if step >= self.steps:
            return
        plan = self.sampler.plan(step)
        idx = plan.tile_indices[rank_slots(len(plan.tile_indices), self.erank, self.n)]
        key = (plan.slide.id, tuple(int(i) for i in idx))
        self.ahead = (key, self.pool.submit(self.tiles.read, plan.slide.id, idx, self.cfg["tileSize"]))

    def backward_encoder(self, xt: torch.Tensor, feats: torch.Tensor, grad: torch.Tensor) -> None:
        """This rank's share of dL/dθ: the gradient of sum(features * dL/dFeatures) (a VJP)."""
        for p in self.params.plist:
            p.grad = None
        if not len(xt):
            return
        if self.args.recompute:
            m = self.cfg["microBatch"]
            for start in range(0, len(xt), m):
                f = encoder_forward(self.params, self.cfg["encoder"], xt[start : start + m])
                (f * grad[start : start + m]).sum().backward()  # grads accumulate over micro-batches
        else:
            (feats * grad).sum().backward()

    def reduce_and_apply(self, lr: float, wd: float) -> float:
        """Sum the encoder gradients over the encoder ranks, apply AdamW, check the replicas."""
        specs = self.run.enc_specs
        grads = [self.params[s["name"]].grad for s in specs]
        flat = torch.cat([(g if g is not None else torch.zeros_like(self.params[s["name"]])).reshape(-1) for g, s in zip(grads, specs)]).to(self.comm)
        t0 = time.perf_counter()
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.enc_group)  # SUM: no 1/N
        if self.args.average_gradients:
            flat /= self.n  # negative control: what DDP does unless the pseudo-loss is scaled by N
        reduce_s = time.perf_counter() - t0
        summed = {}
        offset = 0
        for s in specs:
            p = self.params[s["name"]]
            n = p.numel()
            summed[s["name"]] = flat[offset : offset + n].reshape(p.shape).to(self.device)
            offset += n
        t0 = time.perf_counter()
        self.opt.apply(summed, lr * self.cfg["optimizer"]["encoderLrScale"], wd)
        self._sync()
        opt_s = time.perf_counter() - t0
        self.summed = summed
        return reduce_s, opt_s

    def drift(self) -> float:
        c = torch.from_numpy(checksum(self.params)).to(self.comm)
        all_c = [torch.zeros_like(c) for _ in range(self.n)]
        dist.all_gather(all_c, c, group=self.enc_group)
        ref = all_c[0].to("cpu").numpy()
        worst = 0.0
        for other in all_c[1:]:
            worst = max(worst, metrics.normalized_l1(other.to("cpu").numpy(), ref))
        return worst

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # ---- one step ----

    def step(self, step: int) -> dict | None:
        wall0 = time.perf_counter()
        plan = self.sampler.plan(step)
        hyper = schedule_at(self.cfg["optimizer"], step, self.total, self.warmup)
        k = self.k
        stats = torch.zeros(8, dtype=torch.float64, device=self.comm)  # decode, forward, recompute, reduce, optimizer, drift, tiles
        if self.rank == 0:
            t0 = time.perf_counter()
            feats, owner = self.gather_features(None, None, k)
            gather_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            h = feats.clone().requires_grad_(True)
            rate = self.cfg["dropout"]
            masks = None
            mask_np = None
            if rate > 0:
                mask_np = [dropout_mask(self.cfg["seed"], step, k, layer, rate) for layer in (0, 1)]
            else:
                mask_np = [np.ones((k, HIDDEN), np.float32)] * 2
            masks = [torch.from_numpy(m).to(self.device) for m in mask_np]
            for p in self.params.plist:
                p.grad = None
            logits, scores = aggregator_forward(self.params, h, masks)
            loss = weighted_cross_entropy(logits, plan.slide.label, self.cfg["positiveWeight"])
            loss.backward()
            prob = torch.softmax(logits.detach(), dim=-1).reshape(-1)[1].item()
            grads = {n: self.params[n].grad for n in self.params.names}
            trace_grads = self.params.lab_grads() if self.args.trace else None
            t1 = time.perf_counter()
            self.opt.apply(grads, hyper["lr"], hyper["weightDecay"])
            self._sync()
            opt_s = time.perf_counter() - t1
            agg_s = time.perf_counter() - t0 - opt_s
            feature_grad = h.grad.detach()
            t0 = time.perf_counter()
            if not self.frozen:
                owner_slots = [None] + [np.nonzero(owner == r)[0] for r in range(1, self.world)]
                self.scatter_grads(feature_grad, owner_slots, k)
            scatter_s = time.perf_counter() - t0
            all_stats = [torch.zeros_like(stats) for _ in range(self.world)]
            t0 = time.perf_counter()
            dist.gather(stats, all_stats, dst=0)
            tail_s = time.perf_counter() - t0  # the encoder ranks' backward, reduce and update
            enc = np.stack([s.to("cpu").numpy() for s in all_stats[1:]])
            loss_v = loss.item()
            p_enc = sum(int(np.prod(s["shape"])) for s in self.run.enc_specs)
            report = {
                "step": step, "epoch": plan.epoch, "slide": plan.slide.id, "label": plan.slide.label,
                "loss": js_f32(loss_v), "prob": js_f32(prob), "lr": hyper["lr"], "weightDecay": hyper["weightDecay"],
                "k": k, "ranks": self.n, "d": self.d,
                "wallMs": (time.perf_counter() - wall0) * 1000,
                "replicaDrift": float(enc[:, 5].max()),
                "main": {
                    "gather": max(0.0, gather_s - float((enc[:, 0] + enc[:, 1]).max())) * 1000,
                    "aggregator": agg_s * 1000,
                    "scatter": scatter_s * 1000,
                    "reduce": float(enc[:, 3].max()) * 1000,
                    "optimizer": (opt_s + float(enc[:, 4].max())) * 1000,
                },
                "perRank": [
                    {"rank": r, "tiles": int(enc[r, 6]), "ms": {"decode": enc[r, 0] * 1000, "forward": enc[r, 1] * 1000, "recompute": enc[r, 2] * 1000, "reduce": enc[r, 3] * 1000, "optimizer": enc[r, 4] * 1000}}
                    for r in range(self.n)
                ],
                "bytes": {"gather": 4 * k * self.d + 8 * k, "scatter": 0 if self.frozen else 4 * k * self.d, "reduce": 0 if self.frozen else 4 * p_enc * self.n * 2},
                "attention": {"tileIndices": plan.tile_indices.tolist(), "scores": [js_f32(s) for s in scores.detach().to("cpu").numpy()]},
            }
            if report["replicaDrift"] > self.args.drift_tolerance:
                raise ReplicaDriftError(f"encoder replicas drifted apart at step {step}: relative checksum difference {report['replicaDrift']:.2e}")
            if self.args.trace:
                t = [("loss", np.array([loss_v], np.float32)), ("tileIndices", plan.tile_indices.astype(np.int32)),
                     ("features", feats.to("cpu").numpy()), ("featureGrad", feature_grad.to("cpu").numpy()),
                     ("scores", scores.detach().to("cpu").numpy()), ("mask0", mask_np[0]), ("mask1", mask_np[1])]
                t += [(f"grad.{n}", v) for n, v in trace_grads.items()]
                t += [(f"param.{n}", v) for n, v in self.params.lab_values().items()]
                write_safetensors(os.path.join(self.args.trace, f"step-{step:04d}.main.safetensors"), t, {"slide": plan.slide.id, "step": step})
            return report
        # encoder rank
        slots, x, xt, feats, decode_s, forward_s = self.encode(step, plan.slide, plan.tile_indices, train=not self.frozen)  # the lab encodes a frozen encoder without augmentation
        self.gather_features(feats, slots, k)
        self.prefetch(step + 1)  # the next step's tiles are read while this one computes
        recompute_s = reduce_s = opt_s = drift = 0.0
        if not self.frozen:
            g = self.scatter_grads(None, None, k)[: len(slots)].to(self.device)
            t0 = time.perf_counter()
            self.backward_encoder(xt, feats, g)
            self._sync()
            recompute_s = time.perf_counter() - t0
            reduce_s, opt_s = self.reduce_and_apply(hyper["lr"], hyper["weightDecay"])
            drift = self.drift()
        if self.args.trace:
            t = [("slots", slots.astype(np.int32)), ("input", x), ("features", feats.detach().to("cpu").numpy())]
            if not self.frozen:
                t.append(("featureGrad", g.to("cpu").numpy()))
            if self.rank == 1:
                if not self.frozen:
                    t += [(f"grad.{s['name']}", to_lab_layout(self.summed[s["name"]])) for s in self.run.enc_specs]
                t += [(f"param.{n}", v) for n, v in self.params.lab_values().items()]
            write_safetensors(os.path.join(self.args.trace, f"step-{step:04d}.rank{self.rank}.safetensors"), t, {"step": step})
        stats[:7] = torch.tensor([decode_s, forward_s, recompute_s, reduce_s, opt_s, drift, len(slots)], dtype=torch.float64)
        dist.gather(stats, None, dst=0)
        return None

    # ---- validation ----

    def evaluate(self) -> dict | None:
        """Slide-level predictions on the validation split (no augmentation, no dropout)."""
        t0 = time.perf_counter()
        val = [s for s in self.run.slides if s.split == "val" and s.num_tiles > 0]
        out = []
        for i, slide in enumerate(val):
            ev = self.cfg["evalTiles"]
            count = min(ev, slide.num_tiles) if ev > 0 else slide.num_tiles
            idx = np.arange(count, dtype=np.int32) if count == slide.num_tiles else sample_tiles(slide.num_tiles, count, self.cfg["seed"], eval_key(self.cfg["seed"], i))
            if self.rank == 0:
                feats, _ = self.gather_features(None, None, count)
                with torch.no_grad():
                    logits, scores = aggregator_forward(self.params, feats, None)
                    prob = torch.softmax(logits, dim=-1).reshape(-1)[1].item()
                out.append({"slide": slide.id, "label": slide.label, "prob": js_f32(prob),
                            "attention": {"tileIndices": idx.tolist(), "scores": [js_f32(s) for s in scores.to("cpu").numpy()]}})
            else:
                slots, _, _, feats, _, _ = self.encode(-1, slide, idx, train=False)
                self.gather_features(feats, slots, count)
        if self.rank != 0:
            return None
        probs = [s["prob"] for s in out]
        labels = [s["label"] for s in out]
        auc = metrics.roc_auc(probs, labels)
        band = metrics.roc_bootstrap(probs, labels, 200, self.cfg["seed"])
        done = len(self.history)
        epoch_start = ((done - 1) // self.spe) * self.spe
        losses = [s["loss"] for s in self.history if epoch_start <= s["step"] < done]
        return {
            "epoch": done // self.spe, "step": done, "auc": auc, "aucLower": band["auc"]["lower"], "aucUpper": band["auc"]["upper"],
            "trainLoss": float(np.mean(losses)) if losses else math.nan, "slides": out, "wallMs": (time.perf_counter() - t0) * 1000,
        }

    # ---- the run ----

    def train(self) -> None:
        t_start = time.perf_counter()
        for step in range(self.start, self.steps):
            report = self.step(step)
            if report is not None:
                self.history.append(report)
                print(f"step {step}: {report['slide']} (label {report['label']}) loss {report['loss']:.6f} lr {report['lr']:.3g} "
                      f"drift {report['replicaDrift']:.1e} {report['wallMs']:.0f} ms", flush=True)
            else:
                self.history.append({"step": step})
            last = step == self.steps - 1
            if not self.args.no_eval and ((step + 1) % self.spe == 0 or last):
                ev = self.evaluate()
                if ev is not None:
                    self.evals.append(ev)
                    print(f"validation after step {step + 1}: AUC {ev['auc']:.3f} on {len(ev['slides'])} slides", flush=True)
        self.wall_s = time.perf_counter() - t_start
        self.finish()

    def finish(self) -> None:
        """Process 0 writes the checkpoint (encoder weights from encoder rank 1) and the metrics."""
        p_enc = sum(int(np.prod(s["shape"])) for s in self.run.enc_specs)
        if self.rank == 1:
            packed = torch.from_numpy(self.params.packed()).to(self.comm)
            dist.send(packed, 0)
            if self.opt is not None:
                st = self.opt.lab_state()
                m = np.concatenate([st[f"m.{s['name']}"].reshape(-1) for s in self.run.enc_specs])
                v = np.concatenate([st[f"v.{s['name']}"].reshape(-1) for s in self.run.enc_specs])
                dist.send(torch.from_numpy(np.concatenate([m, v, np.array([self.opt.t], np.float32)])).to(self.comm), 0)
        if self.rank == 0:
            enc = torch.zeros(p_enc, dtype=torch.float32, device=self.comm)
            dist.recv(enc, 1)
            enc_np = enc.to("cpu").numpy()
            enc_state = None
            if not self.frozen:
                buf = torch.zeros(2 * p_enc + 1, dtype=torch.float32, device=self.comm)
                dist.recv(buf, 1)
                enc_state = buf.to("cpu").numpy()
            self.write_outputs(enc_np, enc_state)
        dist.barrier()

    def write_outputs(self, enc_packed: np.ndarray, enc_state) -> None:
        out = self.args.out
        os.makedirs(out, exist_ok=True)
        run = self.run
        enc_vals = []
        offset = 0
        for s in run.enc_specs:
            n = int(np.prod(s["shape"]))
            enc_vals.append((s["name"], enc_packed[offset : offset + n].reshape(s["shape"])))
            offset += n
        agg_vals = list(self.params.lab_values().items())
        steps_done = len(self.history)
        meta = {"format": "slide-lab-checkpoint", "slide-lab.hash": run.hash, "slide-lab.step": str(steps_done),
                "slide-lab.source": f"torch.distributed ({self.backend}, {self.n} encoder ranks)", "slide-lab.layout": "lab (conv [kh,kw,in,out], dense [in,out])"}
        write_safetensors(os.path.join(out, "checkpoint.safetensors"), enc_vals + agg_vals, meta)
        opt_tensors = []
        if enc_state is not None:
            off = 0
            for key in ("m", "v"):
                for s in run.enc_specs:
                    n = int(np.prod(s["shape"]))
                    opt_tensors.append((f"{key}.{s['name']}", enc_state[off : off + n].reshape(s["shape"])))
                    off += n
        opt_tensors += list(self.opt.lab_state().items())
        write_safetensors(os.path.join(out, "optimizer.safetensors"), opt_tensors,
                          {"format": "slide-lab-adamw", "encoder.t": str(int(enc_state[-1])) if enc_state is not None else "0", "aggregator.t": str(self.opt.t)})
        # The lab's tfjs weights format (src/lab/export.ts exportWeights): encoder then aggregator, float32, one shard.
        bin_ = np.concatenate([enc_packed.astype("<f4"), np.concatenate([v.reshape(-1) for _, v in agg_vals]).astype("<f4")])
        with open(os.path.join(out, "weights.bin"), "wb") as f:
            f.write(bin_.tobytes())
        weights = [{"name": s["name"], "shape": s["shape"], "dtype": "float32"} for s in run.enc_specs + run.agg_specs]
        model = {"format": "slide-lab-weights", "generatedBy": "Slide Lab (torch.distributed)", "convertedBy": None,
                 "weightsManifest": [{"paths": ["weights.bin"], "weights": weights}],
                 "userDefinedMetadata": {"hash": run.hash, "step": steps_done, "encoderParams": int(enc_packed.size), "aggregatorParams": int(bin_.size - enc_packed.size)}}
        with open(os.path.join(out, "model.json"), "w", encoding="utf-8") as f:
            json.dump(model, f, indent=1)
        with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(self.metrics_json(), f)
        print(f"wrote {out}/checkpoint.safetensors, optimizer.safetensors, model.json + weights.bin, metrics.json ({steps_done} steps, {self.wall_s:.2f} s)", flush=True)

    def metrics_json(self) -> dict:
        """The lab's metrics JSON (src/lab/export.ts metricsJson), plus `source` and per-step weightDecay/attention."""
        steps = []
        for s in self.history:
            steps.append({
                "step": s["step"], "epoch": s["epoch"], "slide": s["slide"], "label": s["label"], "loss": s["loss"], "prob": s["prob"],
                "lr": s["lr"], "weightDecay": s["weightDecay"], "k": s["k"], "ranks": s["ranks"], "wallMs": s["wallMs"],
                "tilesPerSec": s["k"] * 1000 / s["wallMs"], "replicaDrift": s["replicaDrift"], "main": s["main"], "bytes": s["bytes"],
                "attention": s["attention"],
            })
        evals = [{k: v for k, v in e.items() if k != "wallMs"} for e in self.evals]
        spe = max(1, len({s["slide"] for s in steps}))
        tail = steps[-spe:]
        wall = sum(s["wallMs"] for s in steps)
        tps = sorted(s["tilesPerSec"] for s in steps)
        med = (tps[(len(tps) - 1) // 2] + tps[len(tps) // 2]) / 2 if tps else math.nan
        info = self.rank_info
        return {
            "kind": "slide-lab-metrics", "version": 1, "hash": self.run.hash, "config": self.cfg, "ranks": info, "steps": steps, "evals": evals,
            "summary": {
                "steps": len(steps), "firstLoss": steps[0]["loss"] if steps else math.nan, "lastLoss": steps[-1]["loss"] if steps else math.nan,
                "finalTrainLoss": float(np.mean([s["loss"] for s in tail])) if tail else math.nan,
                "finalAuc": evals[-1]["auc"] if evals else math.nan,
                "tilesPerSec": sum(s["k"] for s in steps) * 1000 / wall if wall > 0 else math.nan, "medianTilesPerSec": med,
                "backend": [r["backend"] for r in info], "adapters": [r["adapter"]["description"] if r["adapter"] else "cpu (torch)" for r in info],
            },
            "source": {"runtime": "torch.distributed", "torch": torch.__version__, "backend": self.backend, "world": self.world, "encoderRanks": self.n,
                       "averageGradients": bool(self.args.average_gradients), "recompute": bool(self.args.recompute), "wallSeconds": self.wall_s},
        }

    def gather_rank_info(self) -> None:
        p_enc = sum(int(np.prod(s["shape"])) for s in self.run.enc_specs)
        mine = {"rank": self.rank - 1, "params": p_enc, "runtime": f"torch.distributed {self.backend}", "backend": "cuda" if self.device.type == "cuda" else "cpu",
                "adapter": {"vendor": "", "architecture": "", "description": torch.cuda.get_device_name(self.device)} if self.device.type == "cuda" else None}
        got = [None] * self.world
        dist.all_gather_object(got, mine)
        self.rank_info = got[1:]


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run = Run(args.run_dir, args.slides_root)
    if args.out is None:
        args.out = os.path.join(args.run_dir, "result")
    backend = args.backend or ("nccl" if torch.cuda.is_available() and not args.cpu else "gloo")
    if "RANK" not in os.environ:
        raise SystemExit("launch with torchrun: torchrun --nproc_per_node N+1 -m slidelab.train <run dir> (1 aggregator + N encoder ranks)")
    world = int(os.environ["WORLD_SIZE"])
    if not torch.cuda.is_available() or args.cpu:
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(backend)
    try:
        trainer = Trainer(args, run)
        trainer.gather_rank_info()
        if dist.get_rank() == 0:
            print(f"slidelab.train: {run.hash or '(defaults)'}: {trainer.n} encoder ranks + aggregator, {backend}, "
                  f"{trainer.steps} of {trainer.total} steps, K={trainer.k}, D={trainer.d}", flush=True)
        trainer.train()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

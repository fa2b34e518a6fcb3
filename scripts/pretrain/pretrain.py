#!/usr/bin/python3
"""Self-supervised pretraining (SimCLR) of a small tile encoder for Slide Lab, on the CPU.

Reads unlabeled context windows (scripts/pretrain/export-tiles.ts: uint8 [N, S, S, 3], S = 48 for
32-px tiles with half a tile of context) and trains, with no labels and no lesion masks:

  encoder  torchvision ResNet-18 of base width W (torchvision's own ResNet/BasicBlock, the
           lab's encoder.kind=tv-resnet), features = global average pool (8 W)
  pretext  SimCLR (Chen et al. 2020): two views of each window, NT-Xent loss on a 2-layer MLP
           projection head (dropped at export). Views: a `tile`-px crop of the window at a
           random position (overlapping, the lab's own magnification: 224 level-0 px at
           0.5 um/px), mild scale jitter, flips and 90-degree rotations, mild colour jitter
           (brightness, contrast, saturation, a small hue shift), sometimes a blur.

After training, BatchNorm running statistics are re-estimated on un-augmented centre crops (the
lab folds them into a fixed scale and shift: contract 2, never batch statistics), then the
encoder's state dict is written as F32 safetensors in torchvision's names (no `fc`) with a json
describing it: architecture, input normalisation, tile size, data, seed, command, wall time, loss.

  /usr/bin/python3 scripts/pretrain/pretrain.py --tiles /tmp/pretrain-tiles.npy \
      --out public/models/slidelab-simclr-r18w16.safetensors
Needs torch and torchvision (Debian's python3-torch 1.13 / python3-torchvision 0.14 work).
"""
import argparse
import json
import math
import os
import platform
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, ResNet


# ---------------------------------------------------------------------------------------------
# model

class TvResNetW(ResNet):
    """torchvision's ResNet with base width `width` instead of 64 (forward and _make_layer are
    torchvision's own; the same subclass as scripts/golden/make_golden.py)."""

    def __init__(self, block, layers, width=16):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()  # features: the pooled 8W vector (no classifier; not exported)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        self.feature_dim = width * 8


class SimCLR(nn.Module):
    def __init__(self, encoder, proj_hidden=256, proj_out=64):
        super().__init__()
        self.encoder = encoder
        d = encoder.feature_dim
        self.head = nn.Sequential(nn.Linear(d, proj_hidden, bias=False), nn.BatchNorm1d(proj_hidden), nn.ReLU(inplace=True), nn.Linear(proj_hidden, proj_out))

    def forward(self, x):
        return self.head(self.encoder(x))


def nt_xent(z, temperature):
    """SimCLR's loss on 2B projections (views i and i + B are the positive pair)."""
    z = F.normalize(z, dim=1)
    n = z.shape[0]
    b = n // 2
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(-1e9)
    target = torch.cat([torch.arange(b, n), torch.arange(0, b)])
    loss = F.cross_entropy(sim, target)
    with torch.no_grad():
        top1 = (sim.argmax(1) == target).float().mean().item()
    return loss, top1


# ---------------------------------------------------------------------------------------------
# views: batched, on float NCHW in [0, 1]

def random_views(x, tile, g, scale=(0.875, 1.15), jitter=0.8, bright=0.2, contrast=0.2, sat=0.2, hue=0.03, blur=0.4):
    """x [B, 3, S, S] float in [0, 1] -> [B, 3, tile, tile]: one random view per window."""
    B, _, S, _ = x.shape
    dev = x.device
    # Geometry: crop side c = tile * s px at a random position, then a flip and a rotation by
    # k x 90 degrees, all one affine map sampled bilinearly (exact pixels at s = 1, integer shift).
    s = torch.empty(B, device=dev).uniform_(*scale, generator=g)
    side = (tile * s).clamp(max=S)
    half = side / S  # half-extent in normalised [-1, 1] coordinates
    room = (1 - half)
    cx = (torch.rand(B, generator=g, device=dev) * 2 - 1) * room
    cy = (torch.rand(B, generator=g, device=dev) * 2 - 1) * room
    k = torch.randint(0, 4, (B,), generator=g, device=dev)
    flip = torch.randint(0, 2, (B,), generator=g, device=dev) * 2 - 1
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=dev)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=dev)[k]
    theta = torch.zeros(B, 2, 3, device=dev)
    theta[:, 0, 0] = cos * half * flip
    theta[:, 0, 1] = -sin * half
    theta[:, 1, 0] = sin * half * flip
    theta[:, 1, 1] = cos * half
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (B, 3, tile, tile), align_corners=False)
    v = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # Colour, with probability `jitter`: brightness, contrast, saturation (torchvision's
    # definitions), then a small hue rotation in YIQ.
    on = (torch.rand(B, 1, 1, 1, generator=g, device=dev) < jitter).float()
    u = lambda a: 1 + (torch.rand(B, 1, 1, 1, generator=g, device=dev) * 2 - 1) * a
    gray_w = torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)
    c = v * u(bright)
    m = (c * gray_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    c = (c - m) * u(contrast) + m
    gray = (c * gray_w).sum(1, keepdim=True)
    c = (c - gray) * u(sat) + gray
    ang = (torch.rand(B, generator=g, device=dev) * 2 - 1) * hue * 2 * math.pi
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=dev)
    from_yiq = torch.linalg.inv(to_yiq)
    rot = torch.zeros(B, 3, 3, device=dev)
    rot[:, 0, 0] = 1
    rot[:, 1, 1] = torch.cos(ang)
    rot[:, 1, 2] = -torch.sin(ang)
    rot[:, 2, 1] = torch.sin(ang)
    rot[:, 2, 2] = torch.cos(ang)
    mat = from_yiq @ rot @ to_yiq  # [B, 3, 3]
    c = torch.einsum("bij,bjhw->bihw", mat, c)
    v = (on * c + (1 - on) * v).clamp(0, 1)

    # Blur, with probability `blur`: the lab's 3x3 [1 2 1] / 4 kernel, sometimes twice.
    kern = torch.tensor([1.0, 2.0, 1.0], device=dev) / 4
    k2 = (kern[:, None] * kern[None, :]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    bl = F.conv2d(F.pad(v, (1, 1, 1, 1), mode="replicate"), k2, groups=3)
    bl2 = F.conv2d(F.pad(bl, (1, 1, 1, 1), mode="replicate"), k2, groups=3)
    r = torch.rand(B, 1, 1, 1, generator=g, device=dev)
    v = torch.where(r < blur / 2, bl2, torch.where(r < blur, bl, v))
    return v


def centre_crop(x, tile):
    S = x.shape[-1]
    o = (S - tile) // 2
    return x[..., o:o + tile, o:o + tile]


# ---------------------------------------------------------------------------------------------
# safetensors (the `safetensors` package is not used)

def st_bytes(tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype == torch.float32:
            dtype, data = "F32", t.numpy().astype("<f4").tobytes()
        elif t.dtype == torch.int64:
            dtype, data = "I64", t.numpy().astype("<i8").tobytes()
        else:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", required=True, help="uint8 .npy [N, S, S, 3] from export-tiles.ts")
    ap.add_argument("--out", required=True, help="the .safetensors to write (a .json goes next to it)")
    ap.add_argument("--width", type=int, default=16, help="ResNet-18 base width (16: 0.7 M parameters, 2.8 MB)")
    ap.add_argument("--tile", type=int, default=32, help="the lab's tile size the encoder is made for")
    ap.add_argument("--epochs", type=int, default=100, help="at most this many epochs")
    ap.add_argument("--minutes", type=float, default=40, help="the training time budget: the schedule ends after this many minutes or --epochs, whichever comes first")
    ap.add_argument("--batch", type=int, default=128, help="windows per step (2 views each)")
    ap.add_argument("--lr", type=float, default=2e-3, help="AdamW peak learning rate (5%% warm-up, then cosine to 0)")
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--norm", choices=["imagenet", "data"], default="imagenet", help="input mean/std: ImageNet's (the lab's default) or the windows' own")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared CPU, 2 threads were 7x slower per step, OpenMP waiting on a descheduled peer)")
    ap.add_argument("--name", default=None, help="model name in the json (default: the file stem)")
    ap.add_argument("--command", default=None, help="the full pipeline command, recorded in the json")
    a = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)

    raw = np.load(a.tiles)
    if raw.dtype != np.uint8 or raw.ndim != 4 or raw.shape[3] != 3:
        sys.exit(f"pretrain: {a.tiles}: expected uint8 [N, S, S, 3], got {raw.dtype} {raw.shape}")
    data = torch.from_numpy(raw).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
    N, _, S, _ = data.shape
    info_path = a.tiles + ".json"
    tiles_info = json.load(open(info_path)) if os.path.exists(info_path) else {}

    # Input normalisation (encoder.mean/std): ImageNet's, the lab's default, so that loading the
    # file is all a user does; or --norm data: the windows' own per-channel statistics.
    if a.norm == "imagenet":
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    else:
        px = data.float().div_(255)
        mean = [round(float(v), 3) for v in px.mean((0, 2, 3))]
        std = [round(float(v), 3) for v in px.std((0, 2, 3))]
        del px
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    norm = lambda v: (v - mean_t) / std_t

    enc = TvResNetW(BasicBlock, [2, 2, 2, 2], width=a.width)
    model = SimCLR(enc)
    params = sum(p.numel() for p in enc.parameters())
    print(f"pretrain: {N} windows {S}x{S} -> {a.tile}-px views; torchvision ResNet-18 width {a.width} ({params} parameters), "
          f"SimCLR batch {a.batch}, tau {a.temperature}, AdamW lr {a.lr}; mean {mean} std {std}; torch {torch.__version__}, {a.threads} threads", flush=True)

    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    # Schedule on progress p = max(steps done / (epochs x steps per epoch), minutes used / --minutes):
    # linear warm-up over the first 5%, then a cosine to 0; training stops at p = 1, so a slow
    # (shared) CPU gets fewer epochs but a complete schedule.
    steps_per_epoch = N // a.batch
    total = max(1, steps_per_epoch * a.epochs)  # --epochs 0: no training (a random-init baseline)
    budget = a.minutes * 60
    progress = lambda s: max(s / total, (time.time() - t_start) / budget)
    lr_of = lambda p: a.lr * p / 0.05 if p < 0.05 else a.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (p - 0.05) / 0.95)))

    curve = []
    step = 0
    p = 0.0
    model.train()
    for epoch in range(a.epochs):
        if progress(step) >= 1:
            break
        perm = torch.randperm(N, generator=g)
        el, ea, nb, te = 0.0, 0.0, 0, time.time()
        for i in range(steps_per_epoch):
            p = progress(step)
            if p >= 1:
                break
            idx = perm[i * a.batch:(i + 1) * a.batch]
            x = data[idx].float().div_(255)
            v1 = norm(random_views(x, a.tile, g))
            v2 = norm(random_views(x, a.tile, g))
            lr = lr_of(p)
            for pg in opt.param_groups:
                pg["lr"] = lr
            loss, top1 = nt_xent(model(torch.cat([v1, v2])), a.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            el += loss.item()
            ea += top1
            nb += 1
        if nb:
            curve.append({"epoch": epoch + 1, "step": step, "loss": round(el / nb, 4), "top1": round(ea / nb, 4), "lr": round(lr, 6), "progress": round(min(1.0, progress(step)), 3), "seconds": round(time.time() - t_start, 1)})
            print(f"epoch {epoch + 1:3d} step {step:5d} loss {el / nb:.4f} pair top-1 {ea / nb:.3f} lr {lr:.2e} progress {min(1.0, progress(step)):.2f} ({time.time() - te:.1f} s, total {time.time() - t_start:.0f} s)", flush=True)
    stopped_early = step < steps_per_epoch * a.epochs

    # BatchNorm running statistics on un-augmented centre crops (what the lab's tiles look like):
    # a cumulative average over one pass, no gradient, nothing else changes.
    for m in enc.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    enc.train()
    with torch.no_grad():
        for i in range(0, N, 512):
            enc(norm(centre_crop(data[i:i + 512].float().div_(255), a.tile)))
    enc.eval()
    with torch.no_grad():
        f = enc(norm(centre_crop(data[:1024].float().div_(255), a.tile)))
    feat_stats = {"mean": round(float(f.mean()), 4), "std_over_tiles": round(float(f.std(0).mean()), 4), "finite": bool(torch.isfinite(f).all())}

    sd = {k: v for k, v in enc.state_dict().items()}
    name = a.name or os.path.splitext(os.path.basename(a.out))[0]
    wall = time.time() - t_start
    meta = {"format": "pt", "slide-lab.family": "tv-resnet", "slide-lab.model": name}
    blob = st_bytes(sd, meta)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "wb") as fh:
        fh.write(blob)
    last = curve[-1] if curve else {"loss": None, "top1": None}
    doc = {
        "name": name,
        "file": os.path.basename(a.out),
        "family": "tv-resnet",
        "architecture": {"kind": "tv-resnet", "depth": 18, "width": a.width, "truncate": False, "featureDim": enc.feature_dim, "parameters": params,
                         "notes": "torchvision.models.resnet.ResNet with BasicBlock [2, 2, 2, 2] and base width %d; no fc (features = global average pool); BatchNorm running statistics re-estimated on un-augmented %d-px centre crops after training" % (a.width, a.tile)},
        "tileSize": a.tile,
        "input": {"mean": ",".join(str(v) for v in mean), "std": ",".join(str(v) for v in std), "scale": "(x / 255 - mean) / std per RGB channel; %s" % ("ImageNet's, the lab's default encoder.mean/std" if a.norm == "imagenet" else "the windows' own statistics"),
                  "mpp": 0.5, "read": "a 224-px tile at 0.5 um/px resampled to tileSize, as the lab reads demo slides"},
        "pretext": {"method": "SimCLR (NT-Xent)", "temperature": a.temperature, "batch": a.batch, "views": "two overlapping %d-px crops of a %d-px context window, scale jitter %s, flips, 90-degree rotations, colour jitter (brightness/contrast/saturation 0.2, hue 0.03, p 0.8), 3x3 blur (p 0.4)" % (a.tile, S, "0.875-1.15"),
                    "projection": "Linear(%d, 256) BN ReLU Linear(256, 64), dropped" % enc.feature_dim, "optimizer": "AdamW lr %g (5%% warm-up, cosine to 0 over min(--epochs, --minutes %g)), weight decay %g on weights" % (a.lr, a.minutes, a.wd),
                    "labels": "none: no slide labels, no lesion masks"},
        "data": {"tiles": os.path.abspath(a.tiles), "windows": N, "windowSize": S, **({k: tiles_info[k] for k in ("demoSeed", "perTile", "context", "seed") if k in tiles_info})},
        "seed": a.seed,
        "epochs": len(curve),
        "steps": step,
        "stoppedEarly": stopped_early,
        "finalLoss": last["loss"],
        "finalPairTop1": last["top1"],
        "lossCurve": [{k: c[k] for k in ("epoch", "loss", "top1", "seconds")} for c in curve],
        "features": feat_stats,
        "wallSeconds": round(wall),
        "command": a.command or " ".join([sys.executable] + sys.argv),
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "threads": a.threads, "cpu": platform.machine()},
    }
    with open(os.path.splitext(a.out)[0] + ".json", "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print(f"wrote {a.out} ({len(blob) / 2**20:.2f} MiB, {params} parameters) in {wall:.0f} s; final loss {last['loss']}, pair top-1 {last['top1']}", flush=True)


if __name__ == "__main__":
    main()

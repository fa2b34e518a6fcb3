#!/usr/bin/env python3
"""PyTorch anchor for Slide Lab's encoder-step figures (run on a CUDA GPU host).

Times the same encoder training steps that docs/GPU.md (section 6) reports for tfjs-webgpu, so the
WebGPU figure can be quoted as a ratio of what the paper's stack reaches on the same card:

  cnn4     4 conv3x3 stride-2 layers 3-32-64-128-256 + ReLU + global average pool
  resnet18 torchvision ResNet-18 trunk (512-d output), GroupNorm(32) or frozen BatchNorm
  vit-s16  ViT-S/16 with timm's semantics (vit_small_patch16_224 without its head: 21,665,664
           parameters, the lab's `{kind:'vit', patch:16, dim:384, blocks:12, heads:6,
           mlpHidden:1536}`): pre-norm blocks, qkv bias, exact GELU, LayerNorm eps 1e-6, class
           token, learned position embeddings, final norm, class-token features [B, 384].
           Attention: F.scaled_dot_product_attention where torch has it (timm's fused_attn), else
           the explicit softmax(q k^T / sqrt(d)) v (--attention math forces it).

Modes: forward only; forward + backward of sum(features * dy) with a fixed random dy and no
optimizer (`fwdbwd`, what a lab rank's recompute does and what `npm run bench -- --only throughput
--throughput-modes encoder` times as "encoder forward+backward alone"); and forward + backward +
SGD (lr 1e-3, `train`). Precision: fp32 with TF32 off (strict, what tfjs computes) and PyTorch's
default (TF32 allowed for cuDNN convolutions); on --device cpu only fp32. Prints one JSON document:
device, versions, and tiles/s (median of --steps after --warmup). --batch is the micro-batch.

  python3 bench/pytorch_anchor.py --batch 64 --size 224 --steps 5 --warmup 2 > anchor.json
  python3 bench/pytorch_anchor.py --models vit-s16 --batch 32 --size 224 > anchor-vit.json
  /usr/bin/python3 bench/pytorch_anchor.py --device cpu --models vit-s16 --batch 1 --steps 1 --warmup 0   # a check that it runs

Needs: torch (a CUDA build for the figures; --device cpu only checks that it runs). torchvision is
not needed (the models are defined below).
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN4(nn.Module):
    def __init__(self):
        super().__init__()
        widths = [3, 32, 64, 128, 256]
        self.convs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1) for i in range(4))

    def forward(self, x):
        for c in self.convs:
            x = F.relu(c(x))
        return x.mean((2, 3))


def norm_layer(kind, c):
    if kind == 'group':
        return nn.GroupNorm(32, c)
    bn = nn.BatchNorm2d(c)
    bn.eval()  # frozen: running statistics, never batch statistics
    for p in bn.parameters():
        p.requires_grad_(False)
    return bn


class Block(nn.Module):
    def __init__(self, cin, cout, stride, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = norm_layer(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.n2 = norm_layer(norm, cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm_layer(norm, cout))

    def forward(self, x):
        y = F.relu(self.n1(self.conv1(x)))
        y = self.n2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18Trunk(nn.Module):
    """torchvision's ResNet-18 widths (11.2M parameters), no classifier: [B, 512] features."""

    def __init__(self, norm='group', width=64):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.stem_norm = norm_layer(norm, width)
        blocks, cin = [], width
        for stage, count in enumerate([2, 2, 2, 2]):
            cout = width * 2 ** stage
            for i in range(count):
                blocks.append(Block(cin, cout, 2 if (i == 0 and stage > 0) else 1, norm))
                cin = cout
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem_norm(self.stem(x))), 3, 2, 1)
        return self.blocks(x).mean((2, 3))

    def train(self, mode=True):
        super().train(mode)
        for m in self.modules():  # keep frozen BatchNorm in inference mode (contract 2)
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


class Attention(nn.Module):
    """timm's Attention: one qkv Linear (bias), heads, scaled dot product, output projection."""

    def __init__(self, dim, heads, fused):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.fused = fused
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)  # [B, h, T, d/h] each
        if self.fused:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            x = ((q * self.scale) @ k.transpose(-2, -1)).softmax(-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, t, d))


class VitBlock(nn.Module):
    def __init__(self, dim, heads, hidden, fused):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, fused)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))  # exact (erf) GELU

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """timm's VisionTransformer without the classifier: [B, 3, S, S] -> class-token features [B, dim]."""

    def __init__(self, size=224, patch=16, dim=384, blocks=12, heads=6, hidden=1536, fused=True):
        super().__init__()
        g = size // patch
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + g * g, dim) * 0.02)
        self.blocks = nn.Sequential(*(VitBlock(dim, heads, hidden, fused) for _ in range(blocks)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, g*g, dim], row-major over (y, x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.norm(self.blocks(x))[:, 0]


def sync(dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize()


def time_steps(fn, steps, warmup, dev):
    for _ in range(warmup):
        fn()
    sync(dev)
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench(model, batch, size, steps, warmup, dev):
    model = model.to(dev)
    x = torch.randn(batch, 3, size, size, device=dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3)
    with torch.no_grad():
        dy = torch.randn_like(model(x))  # dL/dfeatures stand-in, fixed across steps

    def fwd():
        with torch.no_grad():
            model(x)

    def fwdbwd():
        # A lab rank's recompute for one micro-batch: sum(features * dL/dfeatures), gradients only.
        for p in params:
            p.grad = None
        (model(x) * dy).sum().backward()

    def train():
        opt.zero_grad(set_to_none=True)
        # The engine's pseudo-loss on a rank: sum(features * dL/dfeatures); here dy = 1/numel.
        model(x).mean().backward()
        opt.step()

    model.eval()
    f = time_steps(fwd, steps, warmup, dev)
    model.train()
    fb = time_steps(fwdbwd, steps, warmup, dev)
    t = time_steps(train, steps, warmup, dev)
    return {
        'params': sum(p.numel() for p in model.parameters()),
        'forward_ms': f * 1e3, 'forward_tiles_per_s': batch / f,
        'fwdbwd_ms': fb * 1e3, 'fwdbwd_tiles_per_s': batch / fb,
        'train_ms': t * 1e3, 'train_tiles_per_s': batch / t,
    }


MODELS = {
    'cnn4': lambda fused: CNN4(),
    'resnet18-group': lambda fused: ResNet18Trunk('group'),
    'resnet18-frozen-bn': lambda fused: ResNet18Trunk('frozen-bn'),
    'vit-s16': lambda fused: ViT(224, 16, 384, 12, 6, 1536, fused),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--batch', type=int, default=64, help='the micro-batch (tiles per forward + backward)')
    ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--models', default='cnn4,resnet18-group,resnet18-frozen-bn', help=f'comma-separated: {",".join(MODELS)}')
    ap.add_argument('--device', default='cuda', choices=['cuda', 'cpu'], help='cpu: only to check that the script runs (no figures to quote)')
    ap.add_argument('--attention', default='auto', choices=['auto', 'math'], help='ViT: F.scaled_dot_product_attention where available (auto) or the explicit softmax')
    args = ap.parse_args()
    models = args.models.split(',')
    for name in models:
        if name not in MODELS:
            raise SystemExit(f'pytorch_anchor.py: unknown model {name!r}; --models takes {",".join(MODELS)}')
    if 'vit-s16' in models and args.size % 16:
        raise SystemExit(f'pytorch_anchor.py: vit-s16 needs --size a multiple of 16, got {args.size}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('pytorch_anchor.py: no CUDA device; run it on the GPU host (or --device cpu to check that it runs)')
    dev = torch.device(args.device)
    fused = args.attention == 'auto' and hasattr(F, 'scaled_dot_product_attention')

    results = []
    for precision in (('fp32-strict', 'default') if dev.type == 'cuda' else ('fp32',)):
        if dev.type == 'cuda':
            # fp32-strict: no TF32 anywhere (what tfjs's fp32 WebGPU kernels compute).
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = precision == 'default'
            torch.backends.cudnn.benchmark = True
        for name in models:
            torch.manual_seed(0)
            model = MODELS[name](fused)
            r = bench(model, args.batch, args.size, args.steps, args.warmup, dev)
            extra = {'attention': 'sdpa' if fused else 'math'} if name.startswith('vit') else {}
            results.append({'model': name, 'precision': precision, 'batch': args.batch, 'size': args.size, **extra, **r})
            del model
            if dev.type == 'cuda':
                torch.cuda.empty_cache()

    print(json.dumps({
        'kind': 'slide-lab-pytorch-anchor',
        'device': torch.cuda.get_device_name(0) if dev.type == 'cuda' else f'cpu ({torch.get_num_threads()} threads)',
        'torch': torch.__version__,
        'cuda': torch.version.cuda,
        'cudnn': torch.backends.cudnn.version() if dev.type == 'cuda' else None,
        'steps': args.steps,
        'warmup': args.warmup,
        'results': results,
    }, indent=2))


if __name__ == '__main__':
    main()

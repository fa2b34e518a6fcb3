#!/usr/bin/env python3
"""PyTorch anchor for Slide Lab's encoder-step figures (run on a CUDA GPU host; not runnable here).

Times the same encoder training steps that shared/gpu/README.md reports for tfjs-webgpu, so the
WebGPU figure can be quoted as a ratio of what the paper's stack reaches on the same card:

  cnn4     4 conv3x3 stride-2 layers 3-32-64-128-256 + ReLU + global average pool
  resnet18 torchvision ResNet-18 trunk (512-d output), GroupNorm(32) or frozen BatchNorm

Modes: forward only, and forward + backward + SGD (lr 1e-3). Precision: fp32 with TF32 off
(strict, what tfjs computes) and PyTorch's default (TF32 allowed for cuDNN convolutions).
Prints one JSON document: device, versions, and tiles/s (median of --steps after --warmup).

  python3 bench/pytorch_anchor.py --batch 64 --size 224 --steps 5 --warmup 2 > anchor.json

Needs: torch (CUDA build). torchvision is optional (a local ResNet-18 trunk is defined below).
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


def time_steps(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench(model, batch, size, steps, warmup):
    dev = torch.device('cuda')
    model = model.to(dev)
    x = torch.randn(batch, 3, size, size, device=dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3)

    def fwd():
        with torch.no_grad():
            model(x)

    def train():
        opt.zero_grad(set_to_none=True)
        # The engine's pseudo-loss on a rank: sum(features * dL/dfeatures); here dy = 1/numel.
        model(x).mean().backward()
        opt.step()

    model.eval()
    f = time_steps(fwd, steps, warmup)
    model.train()
    t = time_steps(train, steps, warmup)
    return {'forward_ms': f * 1e3, 'forward_tiles_per_s': batch / f, 'train_ms': t * 1e3, 'train_tiles_per_s': batch / t}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--models', default='cnn4,resnet18-group,resnet18-frozen-bn')
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit('pytorch_anchor.py: no CUDA device; run it on the GPU host')

    results = []
    for precision in ('fp32-strict', 'default'):
        # fp32-strict: no TF32 anywhere (what tfjs's fp32 WebGPU kernels compute).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = precision == 'default'
        torch.backends.cudnn.benchmark = True
        for name in args.models.split(','):
            torch.manual_seed(0)
            model = {'cnn4': lambda: CNN4(), 'resnet18-group': lambda: ResNet18Trunk('group'), 'resnet18-frozen-bn': lambda: ResNet18Trunk('frozen-bn')}[name]()
            r = bench(model, args.batch, args.size, args.steps, args.warmup)
            results.append({'model': name, 'precision': precision, 'batch': args.batch, 'size': args.size, **r})
            del model
            torch.cuda.empty_cache()

    print(json.dumps({
        'kind': 'slide-lab-pytorch-anchor',
        'device': torch.cuda.get_device_name(0),
        'torch': torch.__version__,
        'cuda': torch.version.cuda,
        'cudnn': torch.backends.cudnn.version(),
        'results': results,
    }, indent=2))


if __name__ == '__main__':
    main()

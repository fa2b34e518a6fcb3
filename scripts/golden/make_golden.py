#!/usr/bin/python3
"""Golden fixtures for the pretrained-encoder importer (ViT and torchvision ResNet).

What it makes (in fixtures/pretrained/, see fixtures/pretrained/README.md):
  for each model <id>:
    <id>.safetensors          the full state_dict (F32, int64 buffers as I64)
    <id>.pt                   a torch.save zip checkpoint (nesting per model, where stated)
    <id>.expect.safetensors   input [B,H,W,3] NHWC, features [B,F], r [B,F],
                              grad.input (NHWC) and grad.<param> of sum(features * r)
    <id>.json                 family, tile size, batch, feature dim, architecture options
  timm-vit-x additionally: .f16.safetensors, .bf16.safetensors, .expect48/.expect24
  (resampled position embeddings), and the bad inputs evil.pt and legacy.pt.

All weights are random (seeded); no real model weights are involved. The reference models are
torchvision's own ResNet / VisionTransformer classes and, for timm and Hugging Face, plain-torch
re-implementations written here that follow timm's vision_transformer.py and transformers'
modeling_vit.py names and semantics (neither library is installed).

Run:  npm run fixtures:golden     (= /usr/bin/python3 scripts/golden/make_golden.py)
      options: --out DIR (default fixtures/pretrained), --check-only (verify, write nothing)
Needs Debian's python3-torch and python3-torchvision. The committed files were made with
torch 1.13.0a0 (Debian 1.13.1) and torchvision 0.14.1a0 (Debian 0.14.1), numpy 1.24, on CPU with
one thread. Output is byte-for-byte deterministic for a given torch build (checked by running twice).
"""

import argparse
import collections
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vision_transformer import VisionTransformer

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

B = 2
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# ----------------------------------------------------------------------------------------------
# safetensors (tiny writer + reader; the `safetensors` package is not used)

_NP = {"F32": "<f4", "I64": "<i8", "F16": "<i2", "BF16": "<i2"}  # half types are written as raw 16-bit


def _tensor_entry(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.float32:
        return "F32", t.numpy().astype("<f4").tobytes()
    if t.dtype == torch.int64:
        return "I64", t.numpy().astype("<i8").tobytes()
    if t.dtype == torch.float16:
        return "F16", t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy().astype("<i2").tobytes()
    raise TypeError(f"unsupported dtype {t.dtype}")


def st_bytes(tensors):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        dtype, data = _tensor_entry(t)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def st_read(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    assert header.pop("__metadata__") == {"format": "pt"}
    body = buf[8 + n:]
    out = {}
    end_max = 0
    for name, e in header.items():
        b0, b1 = e["data_offsets"]
        end_max = max(end_max, b1)
        arr = np.frombuffer(body[b0:b1], dtype=_NP[e["dtype"]]).reshape(e["shape"])
        t = torch.from_numpy(arr.copy())
        if e["dtype"] == "F16":
            t = t.view(torch.float16)
        elif e["dtype"] == "BF16":
            t = t.view(torch.bfloat16)
        out[name] = (e["dtype"], t)
    assert end_max == len(body), "trailing bytes"
    return out


# ----------------------------------------------------------------------------------------------
# models

class TvResNetW(ResNet):
    """torchvision ResNet with base width `width` instead of the hard-coded 64.

    Same as torchvision.models.resnet.ResNet.__init__ (zero_init_residual=False, groups=1,
    width_per_group=64 so Bottleneck's inner width equals planes), only the plane counts change.
    forward / _forward_impl / _make_layer are torchvision's own.
    """

    def __init__(self, block, layers, width=8, num_classes=10):
        nn.Module.__init__(self)
        norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2, dilate=False)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2, dilate=False)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2, dilate=False)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def randomise_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn_like(m.weight))
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(100)


def resnet_features(model, x):
    return torch.flatten(model.avgpool(model.layer4(_resnet_stem_to_layer3(model, x))), 1)


def _resnet_stem_to_layer3(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer3(model.layer2(model.layer1(x)))


def resnet_trunc_features(model, x):
    # CLAM / UNI "ResNet-50 trunc": up to layer3, then global average pool.
    return torch.flatten(F.adaptive_avg_pool2d(_resnet_stem_to_layer3(model, x), 1), 1)


# --- timm-style ViT (timm/models/vision_transformer.py names and semantics) -------------------

class TimmPatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # NCHW -> NLC; norm = Identity


class TimmAttention(nn.Module):
    def __init__(self, dim, heads, qkv_bias=True):
        super().__init__()
        self.num_heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        Bn, N, C = x.shape
        qkv = self.qkv(x).reshape(Bn, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = q * self.scale
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(Bn, N, C)
        return self.proj(x)


class TimmLayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class TimmMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TimmSwiGLUPacked(nn.Module):
    """timm SwiGLUPacked = GluMlp(act_layer=nn.SiLU, gate_last=False); fc1: D -> 2H, fc2: H -> D."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, 2 * hidden)
        self.act = nn.SiLU()
        self.fc2 = nn.Linear(hidden, dim)
        self.gate_last = False

    def forward(self, x):
        x = self.fc1(x)
        x1, x2 = x.chunk(2, dim=-1)
        x = x1 * self.act(x2) if self.gate_last else self.act(x1) * x2
        return self.fc2(x)


class TimmBlock(nn.Module):
    def __init__(self, dim, heads, hidden, mlp, layer_scale, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = TimmAttention(dim, heads)
        self.ls1 = TimmLayerScale(dim) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = TimmSwiGLUPacked(dim, hidden) if mlp == "swiglu" else TimmMlp(dim, hidden)
        self.ls2 = TimmLayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        x = x + self.ls2(self.mlp(self.norm2(x)))
        return x


class TimmViT(nn.Module):
    def __init__(self, img=32, patch=8, dim=192, blocks=2, heads=3, hidden=768, mlp="gelu",
                 layer_scale=False, reg_tokens=0, no_embed_class=False, pool="token",
                 num_classes=5, eps=1e-6):
        super().__init__()
        g = img // patch
        self.num_prefix_tokens = 1 + reg_tokens
        self.no_embed_class = no_embed_class
        self.pool = pool
        self.patch_embed = TimmPatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, dim)) if reg_tokens else None
        n_pos = g * g if no_embed_class else g * g + self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, dim))
        self.blocks = nn.Sequential(*[TimmBlock(dim, heads, hidden, mlp, layer_scale, eps) for _ in range(blocks)])
        use_fc_norm = pool == "avg"  # timm: fc_norm=None -> global_pool == 'avg'
        self.norm = nn.Identity() if use_fc_norm else nn.LayerNorm(dim, eps=eps)
        self.fc_norm = nn.LayerNorm(dim, eps=eps) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def _pos_embed(self, x, pos_embed):
        to_cat = [self.cls_token.expand(x.shape[0], -1, -1)]
        if self.reg_token is not None:
            to_cat.append(self.reg_token.expand(x.shape[0], -1, -1))
        if self.no_embed_class:
            x = x + pos_embed
            x = torch.cat(to_cat + [x], dim=1)
        else:
            x = torch.cat(to_cat + [x], dim=1)
            x = x + pos_embed
        return x

    def features(self, x, pos_embed=None):
        x = self.patch_embed(x)
        x = self._pos_embed(x, self.pos_embed if pos_embed is None else pos_embed)
        x = self.blocks(x)
        x = self.norm(x)
        if self.pool == "avg":
            x = x[:, self.num_prefix_tokens:].mean(dim=1)
        else:
            x = x[:, 0]
        return self.fc_norm(x)  # forward_head before head_drop / head

    def forward(self, x):
        return self.head(self.features(x))


def timm_init(model):
    """timm init_weights (jax-free default): trunc normal .02 for pos_embed / Linear weights,
    zero Linear biases, cls_token N(0, 1e-6), reg_token N(0, 1e-6), LayerNorm 1 / 0."""
    with torch.no_grad():
        nn.init.trunc_normal_(model.pos_embed, std=0.02)
        nn.init.normal_(model.cls_token, std=1e-6)
        if model.reg_token is not None:
            nn.init.normal_(model.reg_token, std=1e-6)
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def add_noise(model, token_params=()):
    """Make every tensor matter: LayerNorm weight ~ N(1, .2), LayerNorm bias ~ N(0, .1), every
    other bias + N(0, .05), Linear weights + N(0, (0.5/sqrt(fan_in))^2) so attention is not uniform,
    the listed token / position tensors ~ N(0, .2)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.2 * torch.randn_like(m.weight))
                m.bias.normal_(0, 0.1)
            elif isinstance(m, (nn.Linear, nn.Conv2d)):
                if isinstance(m, nn.Linear):
                    m.weight.add_(torch.randn_like(m.weight) * (0.5 / math.sqrt(m.weight.shape[1])))
                if m.bias is not None:
                    m.bias.add_(0.05 * torch.randn_like(m.bias))
            elif isinstance(m, nn.MultiheadAttention):
                m.in_proj_weight.add_(torch.randn_like(m.in_proj_weight) * (0.5 / math.sqrt(m.in_proj_weight.shape[1])))
                m.in_proj_bias.add_(0.05 * torch.randn_like(m.in_proj_bias))
        for p in token_params:
            p.normal_(0, 0.2)


# --- Hugging Face ViTModel (transformers/models/vit/modeling_vit.py names and semantics) ------

class HFPatchEmbeddings(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.projection = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.projection(x).flatten(2).transpose(1, 2)


class HFEmbeddings(nn.Module):
    def __init__(self, img, patch, dim):
        super().__init__()
        g = img // patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.patch_embeddings = HFPatchEmbeddings(patch, dim)
        self.position_embeddings = nn.Parameter(torch.zeros(1, g * g + 1, dim))

    def forward(self, x):
        e = self.patch_embeddings(x)
        e = torch.cat((self.cls_token.expand(e.shape[0], -1, -1), e), dim=1)
        return e + self.position_embeddings


class HFSelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.num_attention_heads = heads
        self.attention_head_size = dim // heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def _t(self, x):
        return x.view(x.shape[:-1] + (self.num_attention_heads, self.attention_head_size)).permute(0, 2, 1, 3)

    def forward(self, h):
        q, k, v = self._t(self.query(h)), self._t(self.key(h)), self._t(self.value(h))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        ctx = scores.softmax(dim=-1) @ v
        ctx = ctx.permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[:-2] + (-1,))


class HFSelfOutput(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dense = nn.Linear(dim, dim)

    def forward(self, h):
        return self.dense(h)


class HFAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.attention = HFSelfAttention(dim, heads)
        self.output = HFSelfOutput(dim)

    def forward(self, h):
        return self.output(self.attention(h))


class HFIntermediate(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.dense = nn.Linear(dim, hidden)
        self.intermediate_act_fn = nn.GELU()  # hidden_act "gelu" = exact erf GELU

    def forward(self, h):
        return self.intermediate_act_fn(self.dense(h))


class HFOutput(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, dim)

    def forward(self, h, residual):
        return self.dense(h) + residual


class HFLayer(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.attention = HFAttention(dim, heads)
        self.intermediate = HFIntermediate(dim, hidden)
        self.output = HFOutput(dim, hidden)
        self.layernorm_before = nn.LayerNorm(dim, eps=eps)
        self.layernorm_after = nn.LayerNorm(dim, eps=eps)

    def forward(self, h):
        h = self.attention(self.layernorm_before(h)) + h
        return self.output(self.intermediate(self.layernorm_after(h)), h)


class HFEncoder(nn.Module):
    def __init__(self, dim, heads, hidden, blocks, eps):
        super().__init__()
        self.layer = nn.ModuleList([HFLayer(dim, heads, hidden, eps) for _ in range(blocks)])

    def forward(self, h):
        for l in self.layer:
            h = l(h)
        return h


class HFPooler(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.activation = nn.Tanh()

    def forward(self, h):
        return self.activation(self.dense(h[:, 0]))


class HFViTModel(nn.Module):
    def __init__(self, img=32, patch=8, dim=64, heads=4, hidden=256, blocks=2, eps=1e-12):
        super().__init__()
        self.embeddings = HFEmbeddings(img, patch, dim)
        self.encoder = HFEncoder(dim, heads, hidden, blocks, eps)
        self.layernorm = nn.LayerNorm(dim, eps=eps)
        self.pooler = HFPooler(dim)

    def last_hidden_state(self, x):
        return self.layernorm(self.encoder(self.embeddings(x)))

    def features(self, x):
        return self.last_hidden_state(x)[:, 0]  # Phikon: CLS of last_hidden_state


def hf_init(model):
    """ViTPreTrainedModel._init_weights with initializer_range .02."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(model.embeddings.position_embeddings, std=0.02)
        nn.init.trunc_normal_(model.embeddings.cls_token, std=0.02)


def tv_vit_features(model, x):
    x = model._process_input(x)
    x = torch.cat([model.class_token.expand(x.shape[0], -1, -1), x], dim=1)
    return model.encoder(x)[:, 0]


# ----------------------------------------------------------------------------------------------
# resampling (timm.layers.pos_embed.resample_abs_pos_embed, num_prefix_tokens=0 for no_embed_class)

def resample_abs_pos_embed(posemb, new_size, num_prefix_tokens=0):
    n = posemb.shape[1]
    hw = int(math.sqrt(n - num_prefix_tokens))
    prefix, pe = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    d = pe.shape[-1]
    pe = pe.float().reshape(1, hw, hw, -1).permute(0, 3, 1, 2)
    pe = F.interpolate(pe, size=new_size, mode="bicubic", antialias=True, align_corners=False)
    pe = pe.permute(0, 2, 3, 1).reshape(1, -1, d)
    return torch.cat([prefix, pe], dim=1) if num_prefix_tokens else pe


# ----------------------------------------------------------------------------------------------

def make_io(seed, tile, feature_dim):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, tile, tile, 3, generator=g)
    r = torch.randn(B, feature_dim, generator=g)
    return x, r


def expectation(model, feat_fn, x_nhwc, r, with_params=True):
    model.zero_grad(set_to_none=True)
    x = x_nhwc.clone().requires_grad_(True)
    feats = feat_fn(model, x.permute(0, 3, 1, 2))
    loss = (feats * r).sum()
    names = [n for n, p in model.named_parameters() if p.requires_grad] if with_params else []
    params = [dict(model.named_parameters())[n] for n in names]
    grads = torch.autograd.grad(loss, [x] + params, allow_unused=True)
    out = {"input": x_nhwc.detach(), "features": feats.detach(), "r": r, "grad.input": grads[0]}
    unused = []
    for n, gr in zip(names, grads[1:]):
        if gr is None:
            unused.append(n)
        else:
            out["grad." + n] = gr
    return out, unused


def tensor_dict(sd):
    return collections.OrderedDict((k, v.detach().clone()) for k, v in sd.items())


class Writer:
    def __init__(self, out, dry):
        self.out = out
        self.dry = dry
        self.files = []

    def path(self, name):
        return os.path.join(self.out, name)

    def st(self, name, tensors):
        if not self.dry:
            with open(self.path(name), "wb") as f:
                f.write(st_bytes(tensors))
        self.files.append(name)

    def pt(self, name, obj, **kw):
        if not self.dry:
            torch.save(obj, self.path(name), **kw)
        self.files.append(name)

    def js(self, name, obj):
        if not self.dry:
            with open(self.path(name), "w") as f:
                f.write(json.dumps(obj, indent=2) + "\n")
        self.files.append(name)


def meta(mid, family, tile, feature_dim, options, files, notes):
    return {
        "id": mid, "family": family, "tileSize": tile, "batch": B, "featureDim": feature_dim,
        "options": options, "files": files,
        "torch": torch.__version__, "torchvision": torchvision.__version__, "notes": notes,
    }


def close(a, b, tol=1e-5):
    return torch.allclose(a, b, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------------------------

def build_resnet(w, mid, block, layers, seed, trunc, pt_wrap, pt_desc):
    torch.manual_seed(seed)
    model = TvResNetW(block, layers, width=8, num_classes=10)
    randomise_bn(model)
    model.eval()
    feat_fn = resnet_trunc_features if trunc else resnet_features
    fdim = 8 * 4 * block.expansion if trunc else 8 * 8 * block.expansion
    tile = 64
    x, r = make_io(seed + 1000, tile, fdim)
    exp, unused = expectation(model, feat_fn, x, r)
    sd = tensor_dict(model.state_dict())
    # self-checks against torchvision's own forward
    with torch.no_grad():
        xin = x.permute(0, 3, 1, 2)
        logits = model(xin)
        if not trunc:
            assert close(model.fc(exp["features"]), logits), "resnet features != torchvision forward"
        f = exp["features"]
        print(f"  {mid}: features mean {f.mean():.4f} std {f.std():.4f}")
        assert f.std() > 1e-2 and torch.isfinite(f).all()
    files = []
    w.st(f"{mid}.safetensors", sd); files.append(f"{mid}.safetensors")
    w.pt(f"{mid}.pt", pt_wrap(sd)); files.append(f"{mid}.pt")
    w.st(f"{mid}.expect.safetensors", exp); files.append(f"{mid}.expect.safetensors")
    arch = "resnet50" if block is Bottleneck else "resnet18"
    options = {"arch": arch, "width": 8, "truncate": "layer3" if trunc else None, "bnEps": 1e-5}
    notes = (f"torchvision.models.resnet.ResNet subclass ({block.__name__}, layers {layers}) with base width 8 "
             f"(planes 8,16,32,64; fc {8 * 8 * block.expansion}->10). BatchNorm weight N(1,.1), bias/running_mean "
             f"N(0,.1), running_var U(.5,1.5), num_batches_tracked=100 (I64). "
             + ("Features: conv1,bn1,relu,maxpool,layer1-3, adaptive avg pool 1x1, flatten (CLAM/UNI ResNet-50 trunc); "
                "layer4.* and fc.* are in the state dict but unused. " if trunc else
                "Features: avgpool output flattened, before fc (fc unused). ")
             + f".pt nesting: {pt_desc}. "
             + f"Parameters with no gradient (unused by the features, no grad.* entry): {summarise(unused)}.")
    w.js(f"{mid}.json", meta(mid, "tv-resnet", tile, fdim, options, files + [f"{mid}.json"], notes))
    return model, sd, unused


def summarise(names):
    if not names:
        return "none"
    prefixes = sorted({n.split(".")[0] for n in names})
    return ", ".join(p + ".*" for p in prefixes) + f" ({len(names)} tensors)"


def build_tv_vit(w):
    mid = "tv-vit"
    seed = 3
    torch.manual_seed(seed)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64,
                              mlp_dim=256, num_classes=10)
    add_noise(model, token_params=[model.class_token, model.encoder.pos_embedding])
    with torch.no_grad():
        model.heads.head.weight.normal_(0, 0.1)
    model.eval()
    tile, fdim = 32, 64
    x, r = make_io(seed + 1000, tile, fdim)
    exp, unused = expectation(model, tv_vit_features, x, r)
    with torch.no_grad():
        assert close(model.heads(exp["features"]), model(x.permute(0, 3, 1, 2))), "tv-vit features != forward"
    sd = tensor_dict(model.state_dict())
    files = [f"{mid}.safetensors", f"{mid}.pt", f"{mid}.expect.safetensors", f"{mid}.json"]
    w.st(files[0], sd)
    w.pt(files[1], model.state_dict())  # plain state_dict (OrderedDict with _metadata, as torch.save(model.state_dict()))
    w.st(files[2], exp)
    options = {"patch": 8, "dim": 64, "blocks": 2, "heads": 4, "mlpHidden": 256, "mlp": "gelu",
               "layerScale": False, "classToken": True, "regTokens": 0, "noEmbedClass": False,
               "posGrid": 4, "pool": "cls", "fcNorm": False, "lnEps": 1e-6, "qkvBias": True}
    names = ", ".join(k for k in sd if k.startswith("encoder.layers.encoder_layer_0."))
    notes = ("torchvision.models.vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2, "
             "num_heads=4, hidden_dim=64, mlp_dim=256, num_classes=10). torchvision 0.14 parameter names: "
             "class_token [1,1,D], conv_proj.{weight,bias}, encoder.pos_embedding [1,1+g*g,D], per layer "
             f"({names}), encoder.ln.{{weight,bias}}, heads.head.{{weight,bias}}. The MLP is a torchvision.ops.MLP "
             "Sequential: mlp.0 = Linear(D,mlp_dim), mlp.1 GELU, mlp.2 Dropout, mlp.3 = Linear(mlp_dim,D) "
             "(old checkpoints used mlp.linear_1 / mlp.linear_2; MLPBlock._load_from_state_dict renames them, version<2). "
             "self_attention is nn.MultiheadAttention: in_proj_weight [3D,D] rows q,k,v; in_proj_bias [3D]; out_proj. "
             "LayerNorm eps 1e-6. Features: class token after encoder.ln; heads unused. "
             "Noise: LayerNorm w N(1,.2) b N(0,.1), all biases +N(0,.05), Linear/in_proj weights +N(0,(.5/sqrt(fan_in))^2), "
             f"class_token and pos_embedding N(0,.2). Parameters with no gradient: {summarise(unused)}.")
    w.js(files[3], meta(mid, "tv-vit", tile, fdim, options, files, notes))
    return model, sd


def timm_vit_options(dim, blocks, heads, hidden, mlp, ls, reg, nec, pool, fc_norm):
    return {"patch": 8, "dim": dim, "blocks": blocks, "heads": heads, "mlpHidden": hidden, "mlp": mlp,
            "layerScale": ls, "classToken": True, "regTokens": reg, "noEmbedClass": nec, "posGrid": 4,
            "pool": pool, "fcNorm": fc_norm, "lnEps": 1e-6, "qkvBias": True}


def build_timm_ti(w):
    mid = "timm-vit-ti"
    seed = 4
    torch.manual_seed(seed)
    model = TimmViT(img=32, patch=8, dim=192, blocks=2, heads=3, hidden=768, mlp="gelu", num_classes=5)
    timm_init(model)
    add_noise(model, token_params=[model.cls_token, model.pos_embed])
    model.eval()
    tile, fdim = 32, 192
    x, r = make_io(seed + 1000, tile, fdim)
    exp, unused = expectation(model, lambda m, t: m.features(t), x, r)
    sd = tensor_dict(model.state_dict())
    cross_check_timm_vs_torchvision(model, x, exp["features"])
    files = [f"{mid}.safetensors", f"{mid}.expect.safetensors", f"{mid}.json"]
    w.st(files[0], sd)
    w.st(files[1], exp)
    notes = ("timm VisionTransformer names/semantics, written in plain torch: patch_embed.proj, cls_token, pos_embed "
             "[1,1+16,D] (class token embedded), blocks.i.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}, norm, head "
             "(Linear(D,5), unused). qkv rows q,k,v; heads split reshape(B,T,3,heads,hd); exact GELU; LayerNorm eps 1e-6; "
             "features = norm(all tokens)[:,0] (global_pool='token'). timm init then noise: LayerNorm w N(1,.2) "
             "b N(0,.1), biases +N(0,.05), Linear weights +N(0,(.5/sqrt(fan_in))^2), cls_token and pos_embed N(0,.2). "
             "Cross-checked against torchvision's VisionTransformer loaded with the same weights. "
             f"Parameters with no gradient: {summarise(unused)}.")
    w.js(files[2], meta(mid, "timm-vit", tile, fdim,
                        timm_vit_options(192, 2, 3, 768, "gelu", False, 0, False, "cls", False), files, notes))
    return model, sd


def cross_check_timm_vs_torchvision(model, x, feats):
    """Independent check of the timm-style code: load its weights into torchvision's ViT."""
    D = model.cls_token.shape[-1]
    tv = VisionTransformer(image_size=32, patch_size=8, num_layers=len(model.blocks),
                           num_heads=model.blocks[0].attn.num_heads, hidden_dim=D,
                           mlp_dim=model.blocks[0].mlp.fc1.out_features, num_classes=5)
    s = model.state_dict()
    t = {"class_token": s["cls_token"], "encoder.pos_embedding": s["pos_embed"],
         "conv_proj.weight": s["patch_embed.proj.weight"], "conv_proj.bias": s["patch_embed.proj.bias"],
         "encoder.ln.weight": s["norm.weight"], "encoder.ln.bias": s["norm.bias"],
         "heads.head.weight": s["head.weight"], "heads.head.bias": s["head.bias"]}
    for i in range(len(model.blocks)):
        a, b = f"blocks.{i}.", f"encoder.layers.encoder_layer_{i}."
        for src, dst in [("norm1", "ln_1"), ("norm2", "ln_2"), ("attn.proj", "self_attention.out_proj"),
                         ("mlp.fc1", "mlp.0"), ("mlp.fc2", "mlp.3")]:
            t[b + dst + ".weight"] = s[a + src + ".weight"]
            t[b + dst + ".bias"] = s[a + src + ".bias"]
        t[b + "self_attention.in_proj_weight"] = s[a + "attn.qkv.weight"]
        t[b + "self_attention.in_proj_bias"] = s[a + "attn.qkv.bias"]
    tv.load_state_dict(t)
    tv.eval()
    with torch.no_grad():
        f2 = tv_vit_features(tv, x.permute(0, 3, 1, 2))
    assert close(feats, f2, 1e-4), f"timm-style ViT disagrees with torchvision: {(feats - f2).abs().max()}"
    print(f"  cross-check timm-style vs torchvision ViT: max |diff| {(feats - f2).abs().max():.2e}")


def build_timm_x(w):
    mid = "timm-vit-x"
    seed = 5
    torch.manual_seed(seed)
    model = TimmViT(img=32, patch=8, dim=64, blocks=2, heads=4, hidden=128, mlp="swiglu", layer_scale=True,
                    reg_tokens=4, no_embed_class=True, pool="avg", num_classes=0)
    timm_init(model)
    add_noise(model, token_params=[model.cls_token, model.reg_token, model.pos_embed])
    with torch.no_grad():
        for blk in model.blocks:
            blk.ls1.gamma.normal_(0.1, 0.05)
            blk.ls2.gamma.normal_(0.1, 0.05)
    model.eval()
    tile, fdim = 32, 64
    feat = lambda m, t: m.features(t)
    x, r = make_io(seed + 1000, tile, fdim)
    exp, unused = expectation(model, feat, x, r)
    sd = tensor_dict(model.state_dict())
    assert not any(k.startswith("norm.") for k in sd) and "fc_norm.weight" in sd
    discriminate_x(model, x, exp["features"])

    files = [f"{mid}.safetensors", f"{mid}.pt", f"{mid}.f16.safetensors", f"{mid}.bf16.safetensors",
             f"{mid}.expect.safetensors", f"{mid}.expect48.safetensors", f"{mid}.expect24.safetensors", f"{mid}.json"]
    w.st(files[0], sd)
    w.pt(files[1], {"teacher": collections.OrderedDict(("backbone." + k, v) for k, v in sd.items())})
    w.st(files[2], {k: v.to(torch.float16) for k, v in sd.items()})
    w.st(files[3], {k: v.to(torch.bfloat16) for k, v in sd.items()})
    w.st(files[4], exp)
    for tile2, name in [(48, files[5]), (24, files[6])]:
        g2 = tile2 // 8
        with torch.no_grad():
            pe = resample_abs_pos_embed(model.pos_embed.detach(), (g2, g2))
        x2, r2 = make_io(seed + 1000 + tile2, tile2, fdim)
        e2, _ = expectation(model, lambda m, t: m.features(t, pos_embed=pe), x2, r2, with_params=False)
        e2["pos_embed_resized"] = pe
        w.st(name, e2)
    notes = ("timm VisionTransformer names/semantics in plain torch with class_token=True, reg_tokens=4, "
             "no_embed_class=True, init_values (LayerScale ls1/ls2.gamma ~ N(.1,.05)), mlp_layer=SwiGLUPacked "
             "(GluMlp gate_last=False, SiLU; fc1 D->2H, act(first half) * second half, fc2 H->D; H=128), "
             "global_pool='avg' (mean of the 16 patch tokens, prefix tokens excluded), fc_norm LayerNorm, norm=Identity "
             "(no norm.* keys), num_classes=0 (no head.* keys). Token order [cls, reg0..3, patches]; pos_embed [1,16,D] "
             "added to the patch tokens before the prefix tokens are prepended. LayerNorm eps 1e-6. "
             ".pt nesting: {'teacher': {'backbone.' + k: v}}. f16/bf16 files: the same state dict cast with "
             ".to(torch.float16) / .to(torch.bfloat16) (round to nearest even). expect48 / expect24: same weights at tile "
             "48 (grid 6) / 24 (grid 3) with pos_embed resampled as timm resample_abs_pos_embed(num_prefix_tokens=0): "
             "[1,g,g,D] -> NCHW -> F.interpolate(bicubic, antialias=True, align_corners=False) -> [1,g'*g',D] "
             "(tensor pos_embed_resized); these hold input, features, r, grad.input only. "
             f"Parameters with no gradient: {summarise(unused)}.")
    w.js(files[7], meta(mid, "timm-vit", tile, fdim,
                        timm_vit_options(64, 2, 4, 128, "swiglu", True, 4, True, "mean", True), files, notes))
    return model, sd


def discriminate_x(model, x, feats):
    """The exotic paths change the output (so a TS importer that ignores one of them fails)."""
    xin = x.permute(0, 3, 1, 2)

    def diff(f):
        return (f - feats).abs().max().item()

    report = {}
    with torch.no_grad():
        saved = [(b.ls1.gamma.clone(), b.ls2.gamma.clone()) for b in model.blocks]
        for b in model.blocks:
            b.ls1.gamma.fill_(1.0); b.ls2.gamma.fill_(1.0)
        report["layer scale -> ones"] = diff(model.features(xin))
        for b, (g1, g2) in zip(model.blocks, saved):
            b.ls1.gamma.copy_(g1); b.ls2.gamma.copy_(g2)
        for b in model.blocks:
            b.mlp.gate_last = True
        report["SwiGLU gate on second half"] = diff(model.features(xin))
        for b in model.blocks:
            b.mlp.gate_last = False
        pe = model.pos_embed.clone()
        report["pos_embed zeroed"] = diff(model.features(xin, pos_embed=torch.zeros_like(pe)))
        # pos_embed shifted by the 5 prefix tokens (as if it were added after prepending: first 11 patches
        # get rows 5.., prefix tokens get rows 0..4) -- emulate by rolling the table
        report["pos_embed rolled by 5 rows"] = diff(model.features(xin, pos_embed=pe.roll(5, dims=1)))
        model.pool = "token"
        report["cls pooling instead of avg"] = diff(model.features(xin))
        model.pool = "avg"
        nt = model.num_prefix_tokens
        model.num_prefix_tokens = 1
        report["avg including register tokens"] = diff(model.features(xin))
        model.num_prefix_tokens = nt
        reg = model.reg_token.clone()
        model.reg_token.zero_()
        report["register tokens zeroed"] = diff(model.features(xin))
        model.reg_token.copy_(reg)
        assert diff(model.features(xin)) == 0.0
    for k, v in report.items():
        print(f"  timm-vit-x discrimination: {k:32s} max |dfeat| = {v:.4f}")
        assert v > 1e-2, f"{k} does not change the features"


def build_hf_vit(w):
    mid = "hf-vit"
    seed = 6
    torch.manual_seed(seed)
    model = HFViTModel(img=32, patch=8, dim=64, heads=4, hidden=256, blocks=2, eps=1e-12)
    hf_init(model)
    add_noise(model, token_params=[model.embeddings.cls_token, model.embeddings.position_embeddings])
    model.eval()
    tile, fdim = 32, 64
    x, r = make_io(seed + 1000, tile, fdim)
    exp, unused = expectation(model, lambda m, t: m.features(t), x, r)
    sd = tensor_dict(model.state_dict())
    cross_check_hf_vs_torchvision(model, x, exp["features"])
    files = [f"{mid}.safetensors", f"{mid}.pt", f"{mid}.expect.safetensors", f"{mid}.json"]
    w.st(files[0], sd)
    w.pt(files[1], model.state_dict())
    w.st(files[2], exp)
    options = {"patch": 8, "dim": 64, "blocks": 2, "heads": 4, "mlpHidden": 256, "mlp": "gelu",
               "layerScale": False, "classToken": True, "regTokens": 0, "noEmbedClass": False,
               "posGrid": 4, "pool": "cls", "fcNorm": False, "lnEps": 1e-12, "qkvBias": True}
    notes = ("Hugging Face ViTModel names/semantics in plain torch (add_pooling_layer=True): embeddings.cls_token, "
             "embeddings.position_embeddings [1,17,D], embeddings.patch_embeddings.projection, "
             "encoder.layer.i.{layernorm_before, attention.attention.{query,key,value}, attention.output.dense, "
             "layernorm_after, intermediate.dense, output.dense}, layernorm, pooler.dense (Linear+tanh, unused). "
             "Exact GELU, LayerNorm eps 1e-12. Features = last_hidden_state[:,0] (CLS after the final layernorm, "
             "Phikon's convention). .pt: plain state_dict as in pytorch_model.bin (no 'vit.' prefix: ViTModel). "
             "HF init (trunc normal .02) then noise as in timm-vit-ti. Cross-checked against torchvision's "
             f"VisionTransformer (LayerNorm eps 1e-12) loaded with the same weights. "
             f"Parameters with no gradient: {summarise(unused)}.")
    w.js(files[3], meta(mid, "hf-vit", tile, fdim, options, files, notes))
    return model, sd


def cross_check_hf_vs_torchvision(model, x, feats):
    from functools import partial
    D = 64
    tv = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=D, mlp_dim=256,
                           num_classes=5, norm_layer=partial(nn.LayerNorm, eps=1e-12))
    s = model.state_dict()
    t = {"class_token": s["embeddings.cls_token"], "encoder.pos_embedding": s["embeddings.position_embeddings"],
         "conv_proj.weight": s["embeddings.patch_embeddings.projection.weight"],
         "conv_proj.bias": s["embeddings.patch_embeddings.projection.bias"],
         "encoder.ln.weight": s["layernorm.weight"], "encoder.ln.bias": s["layernorm.bias"],
         "heads.head.weight": torch.zeros(5, D), "heads.head.bias": torch.zeros(5)}
    for i in range(2):
        a, b = f"encoder.layer.{i}.", f"encoder.layers.encoder_layer_{i}."
        for src, dst in [("layernorm_before", "ln_1"), ("layernorm_after", "ln_2"),
                         ("attention.output.dense", "self_attention.out_proj"),
                         ("intermediate.dense", "mlp.0"), ("output.dense", "mlp.3")]:
            t[b + dst + ".weight"] = s[a + src + ".weight"]
            t[b + dst + ".bias"] = s[a + src + ".bias"]
        q, k, v = (a + "attention.attention." + n for n in ("query", "key", "value"))
        t[b + "self_attention.in_proj_weight"] = torch.cat([s[q + ".weight"], s[k + ".weight"], s[v + ".weight"]])
        t[b + "self_attention.in_proj_bias"] = torch.cat([s[q + ".bias"], s[k + ".bias"], s[v + ".bias"]])
    tv.load_state_dict(t)
    tv.eval()
    with torch.no_grad():
        f2 = tv_vit_features(tv, x.permute(0, 3, 1, 2))
    assert close(feats, f2, 1e-4), f"HF-style ViT disagrees with torchvision: {(feats - f2).abs().max()}"
    print(f"  cross-check HF-style vs torchvision ViT: max |diff| {(feats - f2).abs().max():.2e}")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def build_bad(w):
    torch.manual_seed(7)
    w.pt("evil.pt", {"weight": torch.randn(2, 3), "payload": _Evil()})
    legacy = collections.OrderedDict([("weight", torch.randn(2, 3)), ("bias", torch.randn(2)),
                                      ("steps", torch.tensor(5, dtype=torch.int64))])
    if not w.dry:
        with open(w.path("legacy.pt"), "wb") as f:
            f.write(legacy_save_deterministic(legacy))
    w.files.append("legacy.pt")


def legacy_save_deterministic(obj):
    """torch.save(obj, _use_new_zipfile_serialization=False), made reproducible.

    The legacy writer names storages by memory address (str(storage._cdata)) and writes the
    key list and the raw storages in sorted-address order, so both the names and the order of
    the data blocks change from run to run. Here the names are replaced by same-length
    counters "0", "1", ... in the order the tensors appear in `obj` (a flat dict of tensors), and the
    key list and data blocks (8-byte numel + raw data each) are put in that order. The pickle
    opcodes are otherwise torch's own; torch.load reads the result normally."""
    import io
    import pickle
    import pickletools
    tensors = list(obj.values())
    addr = [str(t.storage()._storage._cdata) for t in tensors]
    assert len(set(addr)) == len(tensors) and len(tensors) <= 10
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, sys_info
        pickle.load(f)
    obj_start = f.tell()
    for _ in pickletools.genops(f):  # the object pickle, skipped without executing it
        pass
    obj_end = f.tell()
    keys = pickle.load(f)
    keys_end = f.tell()
    assert keys == sorted(addr), (keys, addr)
    blocks = {}
    pos = keys_end
    for k in keys:
        t = tensors[addr.index(k)]
        n = 8 + t.numel() * t.element_size()
        assert struct.unpack("<q", data[pos:pos + 8])[0] == t.numel()
        blocks[k] = data[pos:pos + n]
        pos += n
    assert pos == len(data)
    new_keys = [str(i) for i in range(len(addr))]
    obj_pickle = data[obj_start:obj_end]
    for a, nk in zip(addr, new_keys):
        # the key is a BINUNICODE string ('X' + u32 length + utf-8) inside the persistent id; protocol 2
        # memo references are indices, not offsets, so the string may change length
        old = b"X" + struct.pack("<I", len(a)) + a.encode()
        assert obj_pickle.count(old) == 1, a
        obj_pickle = obj_pickle.replace(old, b"X" + struct.pack("<I", len(nk)) + nk.encode())
    return (data[:obj_start] + obj_pickle + pickle.dumps(new_keys, protocol=2)
            + b"".join(blocks[a] for a in addr))


# ----------------------------------------------------------------------------------------------
# verification of the written files

def verify(out, expected_sd, pt_unwrap):
    for mid, sd in expected_sd.items():
        got = st_read(os.path.join(out, f"{mid}.safetensors"))
        assert list(got) == sorted(sd), mid
        for k, v in sd.items():
            dt, t = got[k]
            assert dt == ("I64" if v.dtype == torch.int64 else "F32"), (mid, k, dt)
            assert t.dtype == v.dtype and torch.equal(t, v), (mid, k)
        if mid in pt_unwrap:
            obj = torch.load(os.path.join(out, f"{mid}.pt"), map_location="cpu")
            inner = pt_unwrap[mid](obj)
            assert sorted(inner) == sorted(sd), mid
            for k, v in sd.items():
                assert torch.equal(inner[k], v), (mid, k)
        e = st_read(os.path.join(out, f"{mid}.expect.safetensors"))
        assert all(dt == "F32" for dt, _ in e.values())
        for k in ("input", "features", "r", "grad.input"):
            assert k in e, (mid, k)
    sd = expected_sd["timm-vit-x"]
    for suffix, dt, tdt in (("f16", "F16", torch.float16), ("bf16", "BF16", torch.bfloat16)):
        got = st_read(os.path.join(out, f"timm-vit-x.{suffix}.safetensors"))
        for k, v in sd.items():
            assert got[k][0] == dt and torch.equal(got[k][1], v.to(tdt)), (suffix, k)
    leg = torch.load(os.path.join(out, "legacy.pt"))
    assert list(leg) == ["weight", "bias", "steps"] and leg["weight"].shape == (2, 3) and leg["bias"].shape == (2,)
    assert leg["steps"].dtype == torch.int64 and int(leg["steps"]) == 5
    import zipfile
    assert not zipfile.is_zipfile(os.path.join(out, "legacy.pt"))
    assert zipfile.is_zipfile(os.path.join(out, "evil.pt"))
    print("verified: safetensors re-read, .pt re-loaded, f16/bf16 casts, legacy.pt (evil.pt not loaded)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures", "pretrained"))
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    w = Writer(args.out, args.check_only)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")

    sds = {}
    _, sds["tv-resnet18-w8"], _ = build_resnet(
        w, "tv-resnet18-w8", BasicBlock, [2, 2, 2, 2], 1, False,
        lambda sd: {"state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items()), "epoch": 3},
        "{'state_dict': {'module.' + k: v}, 'epoch': 3}")
    _, sds["tv-resnet50trunc-w8"], _ = build_resnet(
        w, "tv-resnet50trunc-w8", Bottleneck, [3, 4, 6, 3], 2, True, lambda sd: {"model": sd},
        "{'model': state_dict}")
    _, sds["tv-vit"] = build_tv_vit(w)
    _, sds["timm-vit-ti"] = build_timm_ti(w)
    _, sds["timm-vit-x"] = build_timm_x(w)
    _, sds["hf-vit"] = build_hf_vit(w)
    build_bad(w)
    if args.check_only:
        print("check-only: nothing written")
        return
    unwrap = {
        "tv-resnet18-w8": lambda o: {k[len("module."):]: v for k, v in o["state_dict"].items()},
        "tv-resnet50trunc-w8": lambda o: o["model"],
        "tv-vit": lambda o: o,
        "timm-vit-x": lambda o: {k[len("backbone."):]: v for k, v in o["teacher"].items()},
        "hf-vit": lambda o: o,
    }
    verify(args.out, sds, unwrap)
    total = 0
    print(f"\n{'file':45s} {'bytes':>10s}  sha256")
    for name in w.files:
        p = w.path(name)
        size = os.path.getsize(p)
        total += size
        with open(p, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()[:16]
        print(f"{name:45s} {size:10d}  {h}")
    print(f"{'total':45s} {total:10d}")


if __name__ == "__main__":
    main()

"""The lab's encoders and aggregator in PyTorch, computing what src/core/models/*.ts compute.

Parameters keep the lab's names (`enc.conv1.w`, `agg.fc1.w`, `enc.blocks.0.attn.qkv.weight`);
they are held in PyTorch layouts and converted at the edges (init.safetensors in, checkpoints out):
  4-d conv weight   lab [kh, kw, in, out]  <->  torch [out, in, kh, kw]
  2-d dense weight  lab [in, out]          <->  torch [out, in]  (F.linear)
  anything else     unchanged (biases, norms, tokens, position embeddings)

Encoders: 'tiny-cnn' (3 strided 3x3 convs with tfjs 'same' padding), 'resnet' (GroupNorm or frozen
BN, tfjs 'same' padding), 'tv-resnet' (torchvision ResNet-18/34/50 with folded BN, symmetric
padding) and 'vit' (timm semantics). Input NCHW float32 (the lab's NHWC tiles permuted), output
[B, D]. tfjs 'same' padding for stride s and kernel k on size S is TensorFlow's asymmetric one:
total = max((ceil(S / s) - 1) * s + k - S, 0), before = total // 2, the rest after.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

HIDDEN = 512
CLASSES = 2


# ---- layouts ----

def to_torch_layout(values: np.ndarray, lab_shape) -> np.ndarray:
    a = np.asarray(values, dtype=np.float32).reshape(lab_shape)
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(3, 2, 0, 1))
    if a.ndim == 2:
        return np.ascontiguousarray(a.T)
    return a


def to_lab_layout(t: torch.Tensor) -> np.ndarray:
    a = t.detach().to("cpu", torch.float32).numpy()
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(2, 3, 1, 0))
    if a.ndim == 2:
        return np.ascontiguousarray(a.T)
    return np.ascontiguousarray(a)


def torch_shape(lab_shape) -> list:
    s = list(lab_shape)
    if len(s) == 4:
        return [s[3], s[2], s[0], s[1]]
    if len(s) == 2:
        return [s[1], s[0]]
    return s


class LabParams(torch.nn.Module):
    """Named parameters in spec order (the lab's packing order), PyTorch layouts inside."""

    def __init__(self, specs: list, device=None, trainable: bool = True):
        super().__init__()
        self.specs = specs
        self.names = [s["name"] for s in specs]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.plist = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.zeros(torch_shape(s["shape"]), dtype=torch.float32, device=device), requires_grad=trainable) for s in specs]
        )

    def __getitem__(self, name: str) -> torch.Tensor:
        i = self.index.get(name)
        if i is None:
            raise KeyError(f"parameter {name} is missing (the model and the exported specs disagree)")
        return self.plist[i]

    def get(self, name: str):
        i = self.index.get(name)
        return None if i is None else self.plist[i]

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def load_lab(self, tensors: dict) -> None:
        """tensors: lab name -> values in the lab's layout (numpy). Every spec must be present."""
        problems = []
        for s in self.specs:
            v = tensors.get(s["name"])
            if v is None:
                problems.append(f"{s['name']}: missing")
                continue
            if list(np.shape(v)) != list(s["shape"]):
                problems.append(f"{s['name']}: expected {list(s['shape'])}, got {list(np.shape(v))}")
                continue
            with torch.no_grad():
                p = self[s["name"]]
                p.copy_(torch.from_numpy(to_torch_layout(v, s["shape"])).to(p.device))
        if problems:
            raise ValueError("weights do not fit the model: " + "; ".join(problems[:5]))

    def lab_values(self) -> dict:
        return {n: to_lab_layout(self[n]) for n in self.names}

    def lab_grads(self) -> dict:
        out = {}
        for s in self.specs:
            p = self[s["name"]]
            out[s["name"]] = np.zeros(s["shape"], dtype=np.float32) if p.grad is None else to_lab_layout(p.grad)
        return out

    def packed(self) -> np.ndarray:
        """float32 [P]: every parameter in the lab's layout, in spec order (the lab's packing)."""
        return np.concatenate([v.reshape(-1) for v in self.lab_values().values()]) if self.names else np.zeros(0, np.float32)


# ---- tfjs-compatible padding ----

def same_pads(size: int, k: int, s: int) -> tuple:
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    """Pads NCHW x as tfjs 'same' does before a k x k window with stride s."""
    top, bottom = same_pads(x.shape[2], k, s)
    left, right = same_pads(x.shape[3], k, s)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def conv_same(x: torch.Tensor, w: torch.Tensor, stride: int, bias=None) -> torch.Tensor:
    k = w.shape[2]
    return F.conv2d(pad_same(x, k, stride), w, bias, stride=stride)


# ---- encoders ----

def groups_for(channels: int) -> int:
    for g in range(min(32, channels), 1, -1):
        if channels % g == 0:
            return g
    return 1


RESNET_BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}


def resnet_blocks(enc: dict) -> list:
    blocks = []
    cin = enc["width"]
    for stage, count in enumerate(RESNET_BLOCKS[enc["depth"]]):
        cout = enc["width"] * 2 ** stage
        for i in range(count):
            blocks.append({"name": f"enc.layer{stage + 1}.{i}", "cin": cin, "cout": cout, "stride": 2 if i == 0 and stage > 0 else 1})
            cin = cout
    return blocks


def _norm(p: LabParams, name: str, x: torch.Tensor, enc: dict) -> torch.Tensor:
    gamma, beta = p[f"{name}.gamma"], p[f"{name}.beta"]
    if enc["norm"] == "frozen-bn":
        return x * gamma[None, :, None, None] + beta[None, :, None, None]
    return F.group_norm(x, groups_for(x.shape[1]), gamma, beta, eps=1e-5)


def tiny_cnn_forward(p: LabParams, enc: dict, x: torch.Tensor) -> torch.Tensor:
    h = x
    for name in ("enc.conv1", "enc.conv2", "enc.conv3"):
        h = torch.relu(conv_same(h, p[f"{name}.w"], 2, p[f"{name}.b"]))
    return h.mean(dim=(2, 3))  # [B, 4w]


def resnet_forward(p: LabParams, enc: dict, x: torch.Tensor) -> torch.Tensor:
    h = torch.relu(_norm(p, "enc.stem.norm", conv_same(x, p["enc.stem.w"], 2), enc))
    h = F.max_pool2d(pad_same(h, 3, 2, float("-inf")), 3, 2)  # tfjs skips out-of-range taps: -inf padding
    for b in resnet_blocks(enc):
        n = b["name"]
        y = torch.relu(_norm(p, f"{n}.norm1", conv_same(h, p[f"{n}.conv1.w"], b["stride"]), enc))
        y = _norm(p, f"{n}.norm2", conv_same(y, p[f"{n}.conv2.w"], 1), enc)
        short = _norm(p, f"{n}.down.norm", conv_same(h, p[f"{n}.down.w"], b["stride"]), enc) if f"{n}.down.w" in p else h
        h = torch.relu(y + short)
    return h.mean(dim=(2, 3))  # [B, 8w]


def tv_resnet_blocks(enc: dict) -> list:
    depth = enc["depth"]
    expansion = 4 if depth == 50 else 1
    stages = 3 if enc.get("truncate") else 4
    blocks = []
    inplanes = enc["width"]
    for s, count in enumerate(RESNET_BLOCKS[depth][:stages]):
        planes = enc["width"] * 2 ** s
        for i in range(count):
            name = f"layer{s + 1}.{i}"
            stride = 2 if i == 0 and s > 0 else 1
            cout = planes * expansion

            def c(n, k, ci, co, st, name=name):
                return {"conv": f"{name}.conv{n}", "bn": f"{name}.bn{n}", "k": k, "stride": st}

            convs = [c(1, 1, inplanes, planes, 1), c(2, 3, planes, planes, stride), c(3, 1, planes, cout, 1)] if expansion == 4 else [c(1, 3, inplanes, planes, stride), c(2, 3, planes, planes, 1)]
            down = {"conv": f"{name}.downsample.0", "bn": f"{name}.downsample.1", "k": 1, "stride": stride} if stride != 1 or inplanes != cout else None
            blocks.append({"convs": convs, "down": down})
            inplanes = cout
    return blocks


def _conv_bn(p: LabParams, c: dict, x: torch.Tensor) -> torch.Tensor:
    y = F.conv2d(x, p[f"enc.{c['conv']}.weight"], stride=c["stride"], padding=c["k"] // 2)
    return y * p[f"enc.{c['bn']}.scale"][None, :, None, None] + p[f"enc.{c['bn']}.shift"][None, :, None, None]


def tv_resnet_forward(p: LabParams, enc: dict, x: torch.Tensor) -> torch.Tensor:
    h = torch.relu(_conv_bn(p, {"conv": "conv1", "bn": "bn1", "k": 7, "stride": 2}, x))
    h = F.max_pool2d(h, 3, 2, padding=1)
    for b in tv_resnet_blocks(enc):
        y = h
        for i, c in enumerate(b["convs"]):
            y = _conv_bn(p, c, y)
            if i < len(b["convs"]) - 1:
                y = torch.relu(y)
        short = _conv_bn(p, b["down"], h) if b["down"] else h
        h = torch.relu(y + short)
    return h.mean(dim=(2, 3))


def _layer_norm(p: LabParams, name: str, x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), p[f"{name}.weight"], p[f"{name}.bias"], eps)


def vit_forward(p: LabParams, enc: dict, x: torch.Tensor) -> torch.Tensor:
    B, _, S, _ = x.shape
    D, P, nh = enc["dim"], enc["patch"], enc["heads"]
    if S % P:
        raise ValueError(f"ViT: tileSize {S} is not a multiple of the patch size {P}")
    g = S // P
    N = g * g
    prefix = (1 if enc["classToken"] else 0) + enc["regTokens"]
    T = prefix + N
    eps = enc["lnEps"]
    t = F.conv2d(x, p["enc.patch_embed.proj.weight"], p["enc.patch_embed.proj.bias"], stride=P)  # [B, D, g, g]
    t = t.flatten(2).transpose(1, 2)  # [B, N, D], row-major over (y, x) like timm
    pre = []
    if enc["classToken"]:
        pre.append(p["enc.cls_token"].expand(B, -1, -1))
    if enc["regTokens"] > 0:
        pre.append(p["enc.reg_token"].expand(B, -1, -1))
    pos = p["enc.pos_embed"]
    if enc["noEmbedClass"]:
        t = t + pos
        if pre:
            t = torch.cat(pre + [t], 1)
    else:
        if pre:
            t = torch.cat(pre + [t], 1)
        t = t + pos
    h = t  # [B, T, D]
    hd = D // nh
    for i in range(enc["blocks"]):
        b = f"enc.blocks.{i}"
        a_in = _layer_norm(p, f"{b}.norm1", h, eps)
        qkv = F.linear(a_in, p[f"{b}.attn.qkv.weight"], p.get(f"{b}.attn.qkv.bias"))  # [B, T, 3D]
        q, k, v = qkv.reshape(B, T, 3, nh, hd).permute(2, 0, 3, 1, 4)  # each [B, nh, T, hd]
        attn = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1)
        a = F.linear((attn @ v).transpose(1, 2).reshape(B, T, D), p[f"{b}.attn.proj.weight"], p[f"{b}.attn.proj.bias"])
        if enc["layerScale"]:
            a = a * p[f"{b}.ls1.gamma"]
        h = h + a
        m = F.linear(_layer_norm(p, f"{b}.norm2", h, eps), p[f"{b}.mlp.fc1.weight"], p[f"{b}.mlp.fc1.bias"])
        if enc["mlp"] == "swiglu":
            m1, m2 = m.chunk(2, dim=-1)
            m = F.silu(m1) * m2
        else:
            m = F.gelu(m)
        m = F.linear(m, p[f"{b}.mlp.fc2.weight"], p[f"{b}.mlp.fc2.bias"])
        if enc["layerScale"]:
            m = m * p[f"{b}.ls2.gamma"]
        h = h + m
    if not enc["fcNorm"]:
        h = _layer_norm(p, "enc.norm", h, eps)
    pooled = []
    if enc["pool"] != "mean":
        pooled.append(h[:, 0])
    if enc["pool"] != "cls":
        pooled.append(h[:, prefix:].mean(1))
    if enc["fcNorm"]:
        pooled = [_layer_norm(p, "enc.fc_norm", v, eps) for v in pooled]
    return pooled[0] if len(pooled) == 1 else torch.cat(pooled, 1)


ENCODERS = {"tiny-cnn": tiny_cnn_forward, "resnet": resnet_forward, "tv-resnet": tv_resnet_forward, "vit": vit_forward}


def encoder_forward(p: LabParams, enc: dict, x_nhwc: torch.Tensor) -> torch.Tensor:
    """x [B, S, S, 3] (the lab's layout, normalised) -> features [B, D]."""
    fn = ENCODERS.get(enc["kind"])
    if fn is None:
        raise ValueError(f"encoder kind {enc['kind']!r} is not ported to PyTorch")
    return fn(p, enc, x_nhwc.permute(0, 3, 1, 2))


def tracked_encoder_layers(enc: dict) -> list:
    kind = enc["kind"]
    if kind == "tiny-cnn":
        return ["enc.conv1.w", "enc.conv3.w"]
    if kind == "resnet":
        return ["enc.stem.w", f"{resnet_blocks(enc)[-1]['name']}.conv2.w"]
    if kind == "tv-resnet":
        return ["enc.conv1.weight", f"enc.{tv_resnet_blocks(enc)[-1]['convs'][-1]['conv']}.weight"]
    return ["enc.patch_embed.proj.weight", f"enc.blocks.{enc['blocks'] - 1}.mlp.fc2.weight"]


TRACKED_AGGREGATOR_LAYER = "agg.classifier.w"


# ---- aggregator ----

def aggregator_forward(p: LabParams, h: torch.Tensor, masks) -> tuple:
    """Gated-attention MIL. h [K, D] in slot order; masks ([K, 512], [K, 512]) or None.
    Returns (logits [1, 2], scores [K])."""

    def lin(name, x):
        return F.linear(x, p[f"{name}.w"], p[f"{name}.b"])

    h1 = torch.relu(lin("agg.fc1", h))
    if masks is not None:
        h1 = h1 * masks[0]
    h2 = torch.relu(lin("agg.fc2", h1))
    if masks is not None:
        h2 = h2 * masks[1]
    a = torch.tanh(lin("agg.attn_a", h2)) * torch.sigmoid(lin("agg.attn_b", h2))  # [K, D_attn]
    s = lin("agg.attn_c", a)  # [K, 1]
    attn = torch.softmax(s.reshape(1, -1), dim=1)  # [1, K]
    m = attn @ h2  # [1, 512]
    return lin("agg.classifier", m), s.reshape(-1)


def weighted_cross_entropy(logits: torch.Tensor, label: int, positive_weight: float) -> torch.Tensor:
    """w_y * -log softmax(logits)_y * 2, w = [1 - pw, pw] (x2: equal weights give plain CE)."""
    w = positive_weight if label == 1 else 1 - positive_weight
    return torch.log_softmax(logits, dim=-1).reshape(-1)[label] * (-2 * w)

"""A small safetensors reader and writer (the safetensors package is not needed).

Format: 8 bytes little-endian u64 header length N, N bytes of UTF-8 JSON
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data,
little-endian, row-major, offsets relative to the data section. The writer pads the header with
spaces to a multiple of 8 (as the lab's writeSafetensors does)."""
from __future__ import annotations

import json
import struct

import numpy as np

_DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def read_safetensors(path: str) -> tuple:
    """-> (tensors: name -> numpy array (float32 for BF16), metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: truncated header ({n} bytes announced)")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if end > len(data) or begin > end:
            raise ValueError(f"{path}: tensor {name} lies outside the file")
        dtype = info["dtype"]
        shape = [int(d) for d in info["shape"]]
        if dtype == "BF16":
            bits = np.frombuffer(data[begin:end], dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in _DTYPES:
            arr = np.frombuffer(data[begin:end], dtype=_DTYPES[dtype])
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}, which this reader does not decode")
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name} has {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape).copy()
    return out, meta


def write_safetensors(path: str, tensors, metadata: dict | None = None) -> None:
    """tensors: an iterable of (name, numpy array) or a dict, written in that order."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, arr in items:
        a = np.ascontiguousarray(arr)
        key = next((k for k, d in _DTYPES.items() if d.kind == a.dtype.kind and d.itemsize == a.dtype.itemsize), None)
        if key is None:
            a, key = a.astype("<f4"), "F32"
        else:
            a = a.astype(_DTYPES[key], copy=False)
        if name in header:
            raise ValueError(f"duplicate or reserved tensor name {name!r}")
        b = a.tobytes()
        header[name] = {"dtype": key, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    js = json.dumps(header, separators=(",", ":")).encode("utf-8")
    js += b" " * ((8 - len(js) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)

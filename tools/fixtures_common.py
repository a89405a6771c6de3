"""Shared helpers for the fixture generator (tools/make_fixtures.py).

Logging (every line is also kept in SUMMARY), relative errors, the logits and JSON writers, the
safetensors weight files (one file, or shards plus model.safetensors.index.json), rounding to the
storage dtype, the RMSNorm / SiLU used by both independent re-implementations, and the token ids
of a fixture (seeded, with one repeated token).
"""

import json
import re

import numpy as np
import torch
from safetensors.torch import load_file, save_file

F32 = torch.float32
F64 = torch.float64
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

SUMMARY = []  # lines printed at the end


def log(msg):
    print(msg, flush=True)
    SUMMARY.append(msg)


def rel_err(a, ref):
    a = torch.as_tensor(a, dtype=F64)
    ref = torch.as_tensor(ref, dtype=F64)
    return float((a - ref).abs().max() / ref.abs().max())


def save_logits(path, t):
    arr = np.ascontiguousarray(torch.as_tensor(t).detach().to(F32).numpy().astype("<f4"))
    np.save(path, arr)


_NUM_LIST = re.compile(r"\[\s*(-?[0-9][-+0-9.eE]*(?:,\s*-?[0-9][-+0-9.eE]*)*)\s*\]")


def write_json(path, obj):
    """Indented JSON, but lists of plain numbers kept on one line."""
    text = json.dumps(obj, indent=1)
    text = _NUM_LIST.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    assert json.loads(text) == obj
    with open(path, "w") as f:
        f.write(text + "\n")


# --------------------------------------------------------------------------
# weight files
# --------------------------------------------------------------------------

def save_weights(dirpath, tensors, shards=1):
    """tensors: ordered dict name -> tensor (already in the storage dtype)."""
    tensors = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    meta = {"format": "pt"}
    if shards == 1:
        save_file(tensors, str(dirpath / "model.safetensors"), metadata=meta)
        return ["model.safetensors"]
    sizes = {k: v.numel() * v.element_size() for k, v in tensors.items()}
    total = sum(sizes.values())
    target = total / shards
    groups, cur, acc = [], {}, 0
    for k, v in tensors.items():
        if cur and acc + sizes[k] / 2 > target * (len(groups) + 1) and len(groups) < shards - 1:
            groups.append(cur)
            cur = {}
        cur[k] = v
        acc += sizes[k]
    groups.append(cur)
    assert len(groups) == shards
    weight_map, files = {}, []
    for i, g in enumerate(groups):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
        save_file(g, str(dirpath / fname), metadata=meta)
        files.append(fname)
        for k in g:
            weight_map[k] = fname
    write_json(dirpath / "model.safetensors.index.json",
               {"metadata": {"total_size": total},
                "weight_map": dict(sorted(weight_map.items()))})
    return files + ["model.safetensors.index.json"]


def load_weights(dirpath):
    idx = dirpath / "model.safetensors.index.json"
    if idx.exists():
        wm = json.loads(idx.read_text())["weight_map"]
        out = {}
        for fname in sorted(set(wm.values())):
            out.update(load_file(str(dirpath / fname)))
        assert set(out) == set(wm)
        return out
    return load_file(str(dirpath / "model.safetensors"))


def round_to(t, dtype_name):
    """Round a fp32 tensor to the storage dtype and back (values the reference sees)."""
    return t.to(DTYPES[dtype_name]).to(F32)


# --------------------------------------------------------------------------
# shared by the torchscale and fla re-implementations and fixtures
# --------------------------------------------------------------------------

def rms(x, w, eps):
    y = x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)
    return y if w is None else y * w


def silu(x):
    return x * torch.sigmoid(x)


def make_ids(seed, T, V):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=T)
    ids[T // 2] = ids[3]  # a repeated token
    return [int(i) for i in ids]

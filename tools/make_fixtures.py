#!/usr/bin/env python3
"""Generate the reference fixtures used by the retnet engine tests.

Writes tests/data/<fixture>/{config.json, weights, *.npy, golden.json} and
tests/data/angles.json.  Everything is deterministic (fixed seeds, one CPU
thread).  See tools/README.md for how to set up the Python environment.

Two families:

* torchscale: goldens come from torchscale 0.3.0 (PyPI) ``RetNetDecoder`` run
  in fp32/eval on CPU.  The parallel golden uses torchscale HEAD's denominator
  (0.3.0 still has the older signed form; we patch ``parallel_forward`` at run
  time, and also store the unpatched result).  An independent float64
  re-implementation written from the spec (working from the *saved files*)
  must agree with torchscale's recurrent logits to 1e-4 relative.
* fla: goldens come from an independent PyTorch re-implementation of
  flash-linear-attention's RetNet (fla itself needs torch>=2 + triton).  The
  parallel form, a token-by-token recurrence and a chunked form are computed
  separately and must agree.

timm: torchscale imports ``timm.models.layers.drop_path`` (which drags in
torchvision).  We register a tiny stand-in module before importing torchscale;
drop-path is never active here (drop_path_rate = 0, eval mode).
"""

import argparse
import contextlib
import json
import math
import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


def _install_timm_stub():
    """Stand-in for timm.models.layers (only drop_path is used by torchscale)."""

    def drop_path(x, drop_prob=0.0, training=False):
        if drop_prob and training:
            raise RuntimeError("drop_path stub: stochastic depth is not supported")
        return x

    for name in ("timm", "timm.models", "timm.models.layers"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["timm"].models = sys.modules["timm.models"]
    sys.modules["timm.models"].layers = sys.modules["timm.models.layers"]
    sys.modules["timm.models.layers"].drop_path = drop_path


_install_timm_stub()
import torchscale  # noqa: E402
from torchscale.architecture.config import RetNetConfig  # noqa: E402
from torchscale.architecture.retnet import RetNetDecoder  # noqa: E402
from torchscale.component.multiscale_retention import MultiScaleRetention  # noqa: E402

try:
    from importlib.metadata import version as _pkg_version

    TORCHSCALE_VERSION = _pkg_version("torchscale")
except Exception:  # pragma: no cover
    TORCHSCALE_VERSION = "unknown"

REPO = Path(__file__).resolve().parent.parent
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
# torchscale family
# --------------------------------------------------------------------------

TS_FIXTURES = [
    dict(name="ts_swish_scaled", naming="torchscale", seed=1001, T=29, V=97,
         L=2, H=3, D=48, Vd=60, F=72, act="swish", no_scale_embedding=False,
         layernorm_embedding=True, tied=False, dtype="float32", deepnorm=False,
         eps=1e-6, rel_pos_buffers=True, shards=1),
    dict(name="ts_gelu_tied_bf16", naming="syncdoth", seed=1002, T=26, V=160,
         L=2, H=2, D=64, Vd=104, F=96, act="gelu", no_scale_embedding=True,
         layernorm_embedding=False, tied=True, dtype="bfloat16", deepnorm=False,
         eps=1e-6, rel_pos_buffers=True, shards=1),
    dict(name="ts_deepnorm_fairseq_f16", naming="fairseq", seed=1003, T=31, V=72,
         L=3, H=4, D=64, Vd=96, F=80, act="swish", no_scale_embedding=False,
         layernorm_embedding=False, tied=False, dtype="float16", deepnorm=True,
         eps=1e-6, rel_pos_buffers=False, shards=1),
    dict(name="ts_sharded", naming="syncdoth", seed=1004, T=37, V=96,
         L=2, H=5, D=80, Vd=140, F=96, act="swish", no_scale_embedding=False,
         layernorm_embedding=True, tied=False, dtype="float32", deepnorm=False,
         eps=1e-5, rel_pos_buffers=True, shards=2),
]


def ts_args(fx, chunk=None):
    return RetNetConfig(
        vocab_size=fx["V"],
        decoder_embed_dim=fx["D"],
        decoder_value_embed_dim=fx["Vd"],
        decoder_ffn_embed_dim=fx["F"],
        decoder_layers=fx["L"],
        decoder_retention_heads=fx["H"],
        activation_fn=fx["act"],
        no_scale_embedding=fx["no_scale_embedding"],
        layernorm_embedding=fx["layernorm_embedding"],
        layernorm_eps=fx["eps"],
        deepnorm=fx["deepnorm"],
        decoder_normalize_before=not fx["deepnorm"],
        share_decoder_input_output_embed=fx["tied"],
        chunkwise_recurrent=chunk is not None,
        recurrent_chunk_size=chunk if chunk is not None else 512,
        dropout=0.0, activation_dropout=0.0, drop_path_rate=0.0,
    )


def ts_build(fx, chunk=None):
    args = ts_args(fx, chunk)
    embed = nn.Embedding(fx["V"], fx["D"])
    outp = nn.Linear(fx["D"], fx["V"], bias=False)
    if fx["tied"]:
        outp.weight = embed.weight
    dec = RetNetDecoder(args, embed_tokens=embed, output_projection=outp)
    dec.eval()
    return dec


def ts_init_(dec, fx):
    """Our own init: reference-like scales, q/k boosted, norm weights randomised."""
    D, L = fx["D"], fx["L"]
    beta = (8.0 * L) ** -0.25 if fx["deepnorm"] else 1.0  # torchscale's deepnorm init
    with torch.no_grad():
        for name, p in dec.named_parameters():  # shared (tied) params appear once
            if name == "embed_tokens.weight":
                p.normal_(0.0, D ** -0.5)
            elif name == "output_projection.weight":
                p.normal_(0.0, 2.0 * D ** -0.5)
            elif name.endswith(("q_proj.weight", "k_proj.weight")):
                nn.init.xavier_uniform_(p, gain=1.0)
            elif name.endswith("g_proj.weight"):
                nn.init.xavier_uniform_(p, gain=1.0)
            elif name.endswith(("v_proj.weight", "out_proj.weight", "fc1.weight", "fc2.weight")):
                nn.init.xavier_uniform_(p, gain=beta)
            elif name.endswith("gate.weight"):
                nn.init.xavier_uniform_(p, gain=1.0)
            elif "norm" in name:
                p.uniform_(0.7, 1.3)
            else:
                raise KeyError(name)
            if fx["dtype"] != "float32":
                p.copy_(round_to(p, fx["dtype"]))


def ts_rename(name, naming):
    if naming == "torchscale":
        return name
    if naming == "fairseq":
        return "decoder." + name
    if naming == "syncdoth":
        if name == "output_projection.weight":
            return "lm_head.weight"
        return "model." + name
    raise ValueError(naming)


def ts_unname(stored, naming):
    if naming == "torchscale":
        return stored
    if naming == "fairseq":
        assert stored.startswith("decoder.")
        return stored[len("decoder."):]
    if stored == "lm_head.weight":
        return "output_projection.weight"
    assert stored.startswith("model.")
    return stored[len("model."):]


def _head_parallel_forward(self, qr, kr, v, mask):
    """torchscale HEAD (fdd8838) parallel core: denominator clamp(sum|A|, 1, 5e4)."""
    b, t, _ = v.size()
    vh = v.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
    a = (qr @ kr.transpose(-1, -2)) * mask
    a = a / a.detach().abs().sum(dim=-1, keepdim=True).clamp(min=1, max=5e4)
    return (a @ vh).transpose(1, 2)


@contextlib.contextmanager
def head_parallel_denominator():
    orig = MultiScaleRetention.parallel_forward
    MultiScaleRetention.parallel_forward = _head_parallel_forward
    try:
        yield
    finally:
        MultiScaleRetention.parallel_forward = orig


@torch.no_grad()
def ts_run_parallel(dec, ids):
    return dec(ids[None])[0][0]


@torch.no_grad()
def ts_run_recurrent(dec, ids):
    state = {}
    rows = []
    for n in range(1, ids.numel() + 1):
        out = dec(ids[None, :n], incremental_state=state)[0]
        assert out.shape[1] == 1
        rows.append(out[0, -1])
    return torch.stack(rows)


# ---- independent float64 re-implementation of torchscale HEAD (spec §1) ----

def rms(x, w, eps):
    y = x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)
    return y if w is None else y * w


def silu(x):
    return x * torch.sigmoid(x)


def ts_linspace_angle(dk):
    """torchscale RetNetRelPos angle buffer, fp32, interleaved duplicates [dk]."""
    base = 1.0 / (10000 ** torch.linspace(0, 1, dk // 2, dtype=F32))
    return base.repeat_interleave(2)


def ts_log_decay(H):
    return torch.log(1 - 2 ** (-5 - torch.arange(H, dtype=F32)))


def ts_reimpl(W, cfg, ids, mode, chunk=None, denominator="head"):
    """W: torchscale-named float tensors.  Returns float64 logits [T, V]."""
    D = cfg["decoder_embed_dim"]
    H = cfg["decoder_retention_heads"]
    Vd = cfg["decoder_value_embed_dim"]
    L = cfg["decoder_layers"]
    eps = cfg["layernorm_eps"]
    prenorm = cfg["decoder_normalize_before"]
    dk, dv = D // H, Vd // H
    T = ids.numel()
    g = {k: v.to(F64) for k, v in W.items()}
    angle32 = W["retnet_rel_pos.angle"].to(F32) if "retnet_rel_pos.angle" in W else ts_linspace_angle(dk)
    decay32 = W["retnet_rel_pos.decay"].to(F32) if "retnet_rel_pos.decay" in W else ts_log_decay(H)
    decay = decay32.to(F64)
    gamma = torch.exp(decay32).to(F64)  # recurrent uses exp(decay) in fp32
    arg = torch.arange(T, dtype=F32)[:, None] * angle32[None, :]  # fp32 product
    sin, cos = torch.sin(arg.to(F64)), torch.cos(arg.to(F64))
    alpha = (2.0 * L) ** 0.25 if cfg["deepnorm"] else 1.0
    act = {"swish": silu, "gelu": F.gelu}[cfg["activation_fn"]]

    def rotate(x):  # x [T, H, dk]; adjacent pairs (2p, 2p+1)
        s, c = sin[:, None, :], cos[:, None, :]
        xe, xo = x[..., 0::2], x[..., 1::2]
        ye = xe * c[..., 0::2] - xo * s[..., 0::2]
        yo = xo * c[..., 1::2] + xe * s[..., 1::2]
        return torch.stack([ye, yo], dim=-1).flatten(-2)

    def core(q, k, v):  # [H,T,dk], [H,T,dk], [H,T,dv] -> [H,T,dv]
        if mode == "recurrent":
            out = torch.zeros(H, T, dv, dtype=F64)
            S = torch.zeros(H, dv, dk, dtype=F64)
            s = torch.zeros(H, dtype=F64)
            for n in range(T):
                kv = v[:, n, :, None] * k[:, n, None, :]
                if n == 0:
                    S, s = kv, torch.ones(H, dtype=F64)
                else:
                    s_new = s * gamma + 1
                    S = S * (s.sqrt() * gamma / s_new.sqrt())[:, None, None] + kv / s_new.sqrt()[:, None, None]
                    s = s_new
                out[:, n] = (S * q[:, n, None, :]).sum(-1)
            return out
        if mode == "parallel":
            n = torch.arange(T, dtype=F64)
            diff = n[:, None] - n[None, :]
            M = torch.where(diff >= 0, torch.exp(diff[None] * decay[:, None, None]), torch.zeros(()).to(F64))
            M = M / M.sum(-1, keepdim=True).sqrt()
            A = (q @ k.transpose(-1, -2)) * M
            if denominator == "head":
                den = A.abs().sum(-1, keepdim=True).clamp(min=1, max=5e4)
            else:
                den = A.sum(-1, keepdim=True).abs().clamp(min=1)
            return (A / den) @ v
        if mode == "chunkwise":
            C = chunk
            i = torch.arange(C, dtype=F64)
            diff = i[:, None] - i[None, :]
            Mc = torch.where(diff >= 0, torch.exp(diff[None] * decay[:, None, None]), torch.zeros(()).to(F64))
            sC = Mc[:, C - 1].sum(-1)  # [H]
            vdec = Mc[:, C - 1] / sC[:, None]  # [H,C]
            r = Mc.sum(-1).sqrt()  # [H,C]
            inner = Mc / r[:, :, None]
            cdec = torch.exp(decay * C)
            qdec = torch.exp(decay[:, None] * (i[None] + 1)) * sC[:, None] / r  # [H,C]
            Z = torch.zeros(H, dk, dv, dtype=F64)
            zs = torch.ones(H, 1, 1, dtype=F64)
            out = torch.zeros(H, T, dv, dtype=F64)
            for c0 in range(0, T, C):
                Lc = min(C, T - c0)  # last chunk may be partial: rows are causal
                qc, kc, vc = q[:, c0:c0 + Lc], k[:, c0:c0 + Lc], v[:, c0:c0 + Lc]
                A = (qc @ kc.transpose(-1, -2)) * inner[:, :Lc, :Lc]
                is_ = A.abs().sum(-1, keepdim=True).clamp(min=1)
                o_in = (A / is_) @ vc
                Zr, cs = Z / zs, zs
                o_cr = (qc * qdec[:, :Lc, None]) @ Zr
                allsc = torch.maximum(is_, cs)
                out[:, c0:c0 + Lc] = o_in / (allsc / is_) + o_cr / (allsc / cs)
                if Lc == C:
                    Z = Z * cdec[:, None, None] + kc.transpose(-1, -2) @ (vc * vdec[:, :, None])
                    zs = Z.abs().sum(-2, keepdim=True).amax(-1, keepdim=True).clamp(min=1)
            return out
        raise ValueError(mode)

    def retention(x, p):
        q = x @ g[p + "q_proj.weight"].T
        k = (x @ g[p + "k_proj.weight"].T) * dk ** -0.5
        v = x @ g[p + "v_proj.weight"].T
        gt = x @ g[p + "g_proj.weight"].T
        q = rotate(q.view(T, H, dk)).transpose(0, 1)
        k = rotate(k.view(T, H, dk)).transpose(0, 1)
        v = v.view(T, H, dv).transpose(0, 1)
        o = core(q, k, v).transpose(0, 1)  # [T,H,dv]
        o = rms(o, None, eps).reshape(T, Vd)
        return (silu(gt) * o) @ g[p + "out_proj.weight"].T

    def glu(x, p):
        return (act(x @ g[p + "fc1.weight"].T) * (x @ g[p + "gate.weight"].T)) @ g[p + "fc2.weight"].T

    scale = 1.0 if cfg["no_scale_embedding"] else math.sqrt(D)
    x = g["embed_tokens.weight"][ids] * scale
    if cfg["layernorm_embedding"]:
        x = rms(x, g["layernorm_embedding.weight"], eps)
    for li in range(L):
        p = "layers.%d." % li
        wr, wf = g[p + "retention_layer_norm.weight"], g[p + "final_layer_norm.weight"]
        h = rms(x, wr, eps) if prenorm else x
        x = x * alpha + retention(h, p + "retention.")
        if not prenorm:
            x = rms(x, wr, eps)
        h = rms(x, wf, eps) if prenorm else x
        x = x * alpha + glu(h, p + "ffn.")
        if not prenorm:
            x = rms(x, wf, eps)
    if prenorm:
        x = rms(x, g["layer_norm.weight"], eps)
    wout = g.get("output_projection.weight", g["embed_tokens.weight"])
    return x @ wout.T


def ts_config_json(fx):
    cfg = {
        "model_type": "retnet",
        "vocab_size": fx["V"],
        "decoder_embed_dim": fx["D"],
        "decoder_value_embed_dim": fx["Vd"],
        "decoder_ffn_embed_dim": fx["F"],
        "decoder_layers": fx["L"],
        "decoder_retention_heads": fx["H"],
        "activation_fn": fx["act"],
        "no_scale_embedding": fx["no_scale_embedding"],
        "layernorm_embedding": fx["layernorm_embedding"],
        "layernorm_eps": fx["eps"],
        "decoder_normalize_before": not fx["deepnorm"],
        "deepnorm": fx["deepnorm"],
        "recurrent_chunk_size": 512,
    }
    if fx["naming"] == "syncdoth":
        cfg["tie_word_embeddings"] = fx["tied"]
    else:
        cfg["share_decoder_input_output_embed"] = fx["tied"]
    cfg["torch_dtype"] = fx["dtype"]
    return cfg


def make_ids(seed, T, V):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=T)
    ids[T // 2] = ids[3]  # a repeated token
    return [int(i) for i in ids]


def ts_fixture(fx, outdir):
    name = fx["name"]
    d = outdir / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    T, V = fx["T"], fx["V"]
    assert 23 <= T <= 40 and T % 4 and T % 7
    torch.manual_seed(fx["seed"])
    dec = ts_build(fx)
    ts_init_(dec, fx)
    ids_list = make_ids(fx["seed"], T, V)
    ids = torch.tensor(ids_list, dtype=torch.long)

    # ---- weights ----
    sd = dec.state_dict()
    tensors = {}
    store = DTYPES[fx["dtype"]]
    for k, v in sd.items():
        if k.startswith("retnet_rel_pos."):
            if not fx["rel_pos_buffers"]:
                continue
            tensors[ts_rename(k, fx["naming"])] = v.to(F32)
            continue
        if k == "output_projection.weight" and fx["tied"] and fx["naming"] == "syncdoth":
            continue
        tensors[ts_rename(k, fx["naming"])] = v.to(store)
    files = save_weights(d, tensors, fx["shards"])
    cfg = ts_config_json(fx)
    write_json(d / "config.json", cfg)

    # ---- goldens from torchscale ----
    with head_parallel_denominator():
        par = ts_run_parallel(dec, ids)
    par_signed = ts_run_parallel(dec, ids)
    rec = ts_run_recurrent(dec, ids)
    chunks = {}
    for C in (4, 7):
        dc = ts_build(fx, chunk=C)
        dc.load_state_dict(dec.state_dict())
        chunks[C] = ts_run_parallel(dc, ids)
    for t in [par, par_signed, rec] + list(chunks.values()):
        assert t.shape == (T, V) and t.dtype == F32 and torch.isfinite(t).all()

    save_logits(d / "parallel.npy", par)
    save_logits(d / "parallel_signed.npy", par_signed)
    save_logits(d / "recurrent.npy", rec)
    for C, t in chunks.items():
        save_logits(d / ("chunkwise_c%d.npy" % C), t)

    # ---- independent re-implementation from the saved files ----
    W = {ts_unname(k, fx["naming"]): v.to(F32) for k, v in load_weights(d).items()}
    checks = {}
    mine_rec = ts_reimpl(W, cfg, ids, "recurrent")
    checks["reimpl_vs_torchscale_recurrent"] = rel_err(mine_rec, rec)
    checks["reimpl_vs_torchscale_parallel_head"] = rel_err(ts_reimpl(W, cfg, ids, "parallel"), par)
    checks["reimpl_vs_torchscale_parallel_signed"] = rel_err(
        ts_reimpl(W, cfg, ids, "parallel", denominator="signed"), par_signed)
    for C in (4, 7):
        checks["reimpl_vs_torchscale_chunkwise_c%d" % C] = rel_err(
            ts_reimpl(W, cfg, ids, "chunkwise", chunk=C), chunks[C])
    checks["parallel_vs_recurrent"] = rel_err(par, rec)
    checks["parallel_signed_vs_parallel"] = rel_err(par_signed, par)
    checks["chunkwise_c4_vs_recurrent"] = rel_err(chunks[4], rec)
    checks["chunkwise_c7_vs_recurrent"] = rel_err(chunks[7], rec)
    assert checks["reimpl_vs_torchscale_recurrent"] < 1e-4, checks
    for k in ("parallel_head", "parallel_signed", "chunkwise_c4", "chunkwise_c7"):
        assert checks["reimpl_vs_torchscale_" + k] < 1e-4, (k, checks)
    # modes agree only up to the group-norm eps; they must still be close
    assert checks["parallel_vs_recurrent"] < 1e-2 and checks["chunkwise_c4_vs_recurrent"] < 1e-2, checks

    ref = ("torchscale %s (PyPI) RetNetDecoder run in fp32%s, eval mode, CPU torch %s. "
           "recurrent: token by token with incremental_state={} passing the whole prefix each step. "
           "chunkwise: RetNetConfig(chunkwise_recurrent=True, recurrent_chunk_size=C); torchscale zero-pads "
           "T up to a multiple of C after the embedding and crops after the layers. "
           "parallel: MultiScaleRetention.parallel_forward monkey-patched at run time to torchscale HEAD's "
           "denominator clamp(sum_m |A|, min=1, max=5e4) (commit fdd8838); parallel_signed.npy is the "
           "unpatched 0.3.0 form clamp(|sum_m A|, min=1). Cross-checked against an independent float64 "
           "re-implementation (tools/make_fixtures.py ts_reimpl) loaded from these files: max|d|/max|ref| "
           "recurrent %.2e, parallel %.2e, chunkwise c4 %.2e / c7 %.2e."
           % (TORCHSCALE_VERSION,
              "" if fx["dtype"] == "float32" else " (weights rounded to %s, saved as such, then upcast to fp32; "
              "the retnet_rel_pos buffers stay fp32)" % fx["dtype"],
              torch.__version__,
              checks["reimpl_vs_torchscale_recurrent"], checks["reimpl_vs_torchscale_parallel_head"],
              checks["reimpl_vs_torchscale_chunkwise_c4"], checks["reimpl_vs_torchscale_chunkwise_c7"]))
    golden = {
        "family": "torchscale",
        "naming": fx["naming"],
        "ids": ids_list,
        "reference": ref,
        "cases": [
            {"mode": "parallel", "file": "parallel.npy"},
            {"mode": "recurrent", "file": "recurrent.npy"},
            {"mode": "chunkwise", "chunk_size": 4, "file": "chunkwise_c4.npy"},
            {"mode": "chunkwise", "chunk_size": 7, "file": "chunkwise_c7.npy"},
            {"mode": "parallel", "denominator": "signed", "file": "parallel_signed.npy"},
        ],
        "checks": checks,
        "logit_abs_max": float(rec.abs().max()),
        "logit_std": float(rec.std()),
    }
    write_json(d / "golden.json", golden)
    log("[%s] naming=%s dtype=%s T=%d V=%d files=%s | logits std %.2f max|.| %.2f"
        % (name, fx["naming"], fx["dtype"], T, V, ",".join(files), golden["logit_std"], golden["logit_abs_max"]))
    for k, v in checks.items():
        log("    %-40s %.3e" % (k, v))


# --------------------------------------------------------------------------
# fla family (independent re-implementation of §3.3)
# --------------------------------------------------------------------------

FLA_FIXTURES = [
    dict(name="fla_base", seed=2001, T=30, V=200, L=2, H=4, D=64, expand_k=1, expand_v=2,
         I=96, dtype="float32", tied=False, fused_mlp=False, eps=1e-6),
    dict(name="fla_bf16_tied", seed=2002, T=33, V=300, L=3, H=3, D=48, expand_k=1, expand_v=1.5,
         I=64, dtype="bfloat16", tied=True, fused_mlp=False, eps=1e-5),
    dict(name="fla_fused_mlp", seed=2004, T=23, V=64, L=2, H=2, D=32, expand_k=1, expand_v=2,
         I=48, dtype="float32", tied=False, fused_mlp=True, eps=1e-6),
]


def fla_inv_freq(dk):
    return 1.0 / (10000 ** (torch.arange(0, dk, 2, dtype=F32) / dk))


def fla_log_gamma(H):
    return torch.log(1 - torch.pow(torch.tensor(2.0, dtype=F32), -5.0 - torch.arange(H, dtype=F32)))


def fla_forward(W, cfg, ids, mode, chunk=None, dtype=F32):
    """W: fla-named fp32 tensors.  mode: parallel | recurrent | chunk."""
    D = cfg["hidden_size"]
    H = cfg["num_heads"]
    key_dim = int(round(D * cfg["expand_k"]))
    value_dim = int(round(D * cfg["expand_v"]))
    dk, dv = key_dim // H, value_dim // H
    I = cfg["intermediate_size"]
    eps = cfg["norm_eps"]
    L = cfg["num_hidden_layers"]
    T = ids.numel()
    g = {k: v.to(dtype) for k, v in W.items()}
    lg32 = fla_log_gamma(H)
    lg = lg32.to(dtype)
    freqs = torch.arange(T, dtype=F32)[:, None] * fla_inv_freq(dk)[None, :]  # fp32 product
    cos = torch.cos(freqs).to(dtype)
    sin = torch.sin(freqs).to(dtype)
    if dtype == F64:  # float64 check: exact trig of the fp32 argument
        cos, sin = torch.cos(freqs.to(F64)), torch.sin(freqs.to(F64))

    def rotate_half(x):  # x [T, H, dk]: pairs (i, i + dk/2)
        h = dk // 2
        x1, x2 = x[..., :h], x[..., h:]
        c, s = cos[:, None, :], sin[:, None, :]
        return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)

    def core(q, k, v):  # [H,T,dk] (q pre-scaled), [H,T,dk], [H,T,dv]
        if mode == "parallel":
            n = torch.arange(T, dtype=dtype)
            diff = n[:, None] - n[None, :]
            Dm = torch.exp(diff[None] * lg[:, None, None]) * (diff >= 0)
            return ((q @ k.transpose(-1, -2)) * Dm) @ v
        if mode == "recurrent":
            # fp32: gamma = exp(ln gamma) rounded to fp32 as fla's kernels do; float64 check: exact
            gamma = torch.exp(lg32).to(dtype) if dtype == F32 else torch.exp(lg)
            S = torch.zeros(H, dk, dv, dtype=dtype)
            out = torch.empty(H, T, dv, dtype=dtype)
            for t in range(T):
                S = gamma[:, None, None] * S + k[:, t, :, None] * v[:, t, None, :]
                out[:, t] = (q[:, t, None, :] @ S)[:, 0]
            return out
        if mode == "chunk":
            C = chunk
            S = torch.zeros(H, dk, dv, dtype=dtype)
            out = torch.empty(H, T, dv, dtype=dtype)
            for c0 in range(0, T, C):
                Lc = min(C, T - c0)
                i = torch.arange(Lc, dtype=dtype)
                diff = i[:, None] - i[None, :]
                Dm = torch.exp(diff[None] * lg[:, None, None]) * (diff >= 0)
                qc, kc, vc = q[:, c0:c0 + Lc], k[:, c0:c0 + Lc], v[:, c0:c0 + Lc]
                o = ((qc @ kc.transpose(-1, -2)) * Dm) @ vc
                o = o + (qc * torch.exp(lg[:, None, None] * (i[None, :, None] + 1))) @ S
                out[:, c0:c0 + Lc] = o
                kdec = torch.exp(lg[:, None, None] * (Lc - 1 - i)[None, :, None])
                S = S * torch.exp(lg * Lc)[:, None, None] + (kc * kdec).transpose(-1, -2) @ vc
            return out
        raise ValueError(mode)

    x = g["model.embeddings.weight"][ids]
    for li in range(L):
        p = "model.layers.%d." % li
        h = rms(x, g[p + "attn_norm.weight"], eps)
        q = (h @ g[p + "attn.q_proj.weight"].T).view(T, H, dk)
        k = (h @ g[p + "attn.k_proj.weight"].T).view(T, H, dk)
        v = (h @ g[p + "attn.v_proj.weight"].T).view(T, H, dv)
        gt = (h @ g[p + "attn.g_proj.weight"].T).view(T, H, dv)
        q = rotate_half(q) * dk ** -0.5
        k = rotate_half(k)
        o = core(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)).transpose(0, 1)
        o = rms(o, g[p + "attn.g_norm_swish_gate.weight"], eps) * silu(gt)
        x = x + o.reshape(T, value_dim) @ g[p + "attn.o_proj.weight"].T
        h = rms(x, g[p + "mlp_norm.weight"], eps)
        if p + "mlp.up_proj.weight" in g:
            wg, wu = g[p + "mlp.gate_proj.weight"], g[p + "mlp.up_proj.weight"]
        else:  # old fused layout: gate_proj = [gate; up]
            wg, wu = g[p + "mlp.gate_proj.weight"][:I], g[p + "mlp.gate_proj.weight"][I:]
        x = x + (silu(h @ wg.T) * (h @ wu.T)) @ g[p + "mlp.down_proj.weight"].T
    x = rms(x, g["model.norm.weight"], eps)
    wout = g["lm_head.weight"] if "lm_head.weight" in g else g["model.embeddings.weight"]
    return x @ wout.T


def fla_make_weights(fx):
    torch.manual_seed(fx["seed"])
    D, H, I, V = fx["D"], fx["H"], fx["I"], fx["V"]
    kd, vd = int(round(D * fx["expand_k"])), int(round(D * fx["expand_v"]))
    dv = vd // H

    def xavier(o, i, gain=1.0):
        w = torch.empty(o, i, dtype=F32)
        nn.init.xavier_uniform_(w, gain=gain)
        return w

    def normw(n):
        return torch.empty(n, dtype=F32).uniform_(0.7, 1.3)

    W = {"model.embeddings.weight": torch.randn(V, D, dtype=F32) * 0.5}
    for li in range(fx["L"]):
        p = "model.layers.%d." % li
        W[p + "attn_norm.weight"] = normw(D)
        W[p + "attn.q_proj.weight"] = xavier(kd, D)
        W[p + "attn.k_proj.weight"] = xavier(kd, D)
        W[p + "attn.v_proj.weight"] = xavier(vd, D)
        W[p + "attn.g_proj.weight"] = xavier(vd, D)
        W[p + "attn.o_proj.weight"] = xavier(D, vd)
        W[p + "attn.g_norm_swish_gate.weight"] = normw(dv)
        W[p + "mlp_norm.weight"] = normw(D)
        gate, up = xavier(I, D), xavier(I, D)
        if fx["fused_mlp"]:
            W[p + "mlp.gate_proj.weight"] = torch.cat([gate, up], dim=0)
        else:
            W[p + "mlp.gate_proj.weight"] = gate
            W[p + "mlp.up_proj.weight"] = up
        W[p + "mlp.down_proj.weight"] = xavier(D, I)
    W["model.norm.weight"] = normw(D)
    if not fx["tied"]:
        W["lm_head.weight"] = torch.randn(V, D, dtype=F32) * (2.0 * D ** -0.5)
    return W


def fla_config_json(fx):
    return {
        "model_type": "retnet",
        "hidden_size": fx["D"],
        "num_hidden_layers": fx["L"],
        "num_heads": fx["H"],
        "expand_k": fx["expand_k"],
        "expand_v": fx["expand_v"],
        "intermediate_size": fx["I"],
        "hidden_ratio": 2,
        "attn_mode": "chunk",
        "hidden_act": "swish",
        "norm_eps": fx["eps"],
        "elementwise_affine": True,
        "fuse_norm": True,
        "use_output_gate": True,
        "use_short_conv": False,
        "tie_word_embeddings": fx["tied"],
        "vocab_size": fx["V"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": fx["dtype"],
    }


@torch.no_grad()
def fla_fixture(fx, outdir):
    name = fx["name"]
    d = outdir / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    T, V = fx["T"], fx["V"]
    assert 23 <= T <= 40 and T % 4 and T % 7
    W = fla_make_weights(fx)
    store = DTYPES[fx["dtype"]]
    files = save_weights(d, {k: v.to(store) for k, v in W.items()})
    cfg = fla_config_json(fx)
    write_json(d / "config.json", cfg)
    ids_list = make_ids(fx["seed"], T, V)
    ids = torch.tensor(ids_list, dtype=torch.long)

    Wf = {k: v.to(F32) for k, v in load_weights(d).items()}  # rounded values, upcast
    par = fla_forward(Wf, cfg, ids, "parallel")
    rec = fla_forward(Wf, cfg, ids, "recurrent")
    chunks = {C: fla_forward(Wf, cfg, ids, "chunk", chunk=C) for C in (4, 7)}
    par64 = fla_forward(Wf, cfg, ids, "parallel", dtype=F64)
    rec64 = fla_forward(Wf, cfg, ids, "recurrent", dtype=F64)
    checks = {
        "parallel_vs_recurrent_fp32": rel_err(rec, par),
        "chunk_c4_vs_parallel_fp32": rel_err(chunks[4], par),
        "chunk_c7_vs_parallel_fp32": rel_err(chunks[7], par),
        "parallel_fp32_vs_fp64": rel_err(par, par64),
        "recurrent_fp64_vs_parallel_fp64": rel_err(rec64, par64),
    }
    assert checks["parallel_vs_recurrent_fp32"] < 1e-5, checks
    assert checks["chunk_c4_vs_parallel_fp32"] < 1e-5 and checks["chunk_c7_vs_parallel_fp32"] < 1e-5, checks
    assert checks["recurrent_fp64_vs_parallel_fp64"] < 1e-12, checks
    for t in [par, rec] + list(chunks.values()):
        assert t.shape == (T, V) and torch.isfinite(t).all()
    save_logits(d / "parallel.npy", par)
    save_logits(d / "recurrent.npy", rec)
    for C, t in chunks.items():
        save_logits(d / ("chunkwise_c%d.npy" % C), t)

    ref = ("independent PyTorch re-implementation of flash-linear-attention RetNet (spec §3.3; fla itself was not "
           "run: it needs torch>=2 + triton), fp32 on CPU torch %s, weights read back from these files%s. "
           "parallel.npy: T x T masked form; recurrent.npy: token-by-token fp32 state S = gamma*S + k(x)v; "
           "chunkwise_cC.npy: chunked form (intra-chunk masked + inter-chunk state, chunk size C). "
           "Measured max|d|/max|ref|: recurrent vs parallel %.2e, chunk c4 %.2e, c7 %.2e, fp32 vs float64 %.2e."
           % (torch.__version__,
              "" if fx["dtype"] == "float32" else " (weights rounded to %s, upcast to fp32)" % fx["dtype"],
              checks["parallel_vs_recurrent_fp32"], checks["chunk_c4_vs_parallel_fp32"],
              checks["chunk_c7_vs_parallel_fp32"], checks["parallel_fp32_vs_fp64"]))
    golden = {
        "family": "fla",
        "naming": "fla-fused-mlp" if fx["fused_mlp"] else "fla",
        "ids": ids_list,
        "reference": ref,
        "cases": [
            {"mode": "parallel", "file": "parallel.npy"},
            {"mode": "recurrent", "file": "recurrent.npy"},
            {"mode": "chunkwise", "chunk_size": 4, "file": "chunkwise_c4.npy"},
            {"mode": "chunkwise", "chunk_size": 7, "file": "chunkwise_c7.npy"},
        ],
        "checks": checks,
        "logit_abs_max": float(par.abs().max()),
        "logit_std": float(par.std()),
    }
    write_json(d / "golden.json", golden)
    log("[%s] dtype=%s T=%d V=%d files=%s | logits std %.2f max|.| %.2f"
        % (name, fx["dtype"], T, V, ",".join(files), golden["logit_std"], golden["logit_abs_max"]))
    for k, v in checks.items():
        log("    %-40s %.3e" % (k, v))


# --------------------------------------------------------------------------
# angles
# --------------------------------------------------------------------------

ANGLE_POSITIONS = [0, 1, 2, 255, 256, 257, 4097, 65535, 100000, 1000003, 16777217]


def make_angles(outdir):
    entries = []
    worst = {}
    ulp_stats = [0, 0, 0.0]  # values, not correctly rounded, max abs error
    for dk in (16, 256):
        for conv in ("linspace", "fla"):
            if conv == "linspace":
                theta = 1.0 / (10000 ** torch.linspace(0, 1, dk // 2, dtype=F32))
                theta64 = 1.0 / (10000.0 ** (np.arange(dk // 2, dtype=np.float64) / (dk // 2 - 1)))
                # the buffer torchscale stores is theta interleaved with itself
                assert torch.equal(RetNetDecoderAngle(dk), theta.repeat_interleave(2))
            else:
                theta = fla_inv_freq(dk)
                theta64 = 1.0 / (10000.0 ** (np.arange(0, dk, 2, dtype=np.float64) / dk))
            pos32 = torch.tensor(ANGLE_POSITIONS, dtype=torch.float64).to(F32)
            arg = pos32[:, None] * theta[None, :]  # fp32 product, as the references do
            # torchscale recurrent multiplies the fp32 angle by a Python int: same result
            for n, row in zip(ANGLE_POSITIONS, arg):
                assert torch.equal(theta * n, row)
            s32, c32 = torch.sin(arg), torch.cos(arg)
            P = np.array(ANGLE_POSITIONS, dtype=np.float64)[:, None]
            s64, c64 = np.sin(P * theta64[None, :]), np.cos(P * theta64[None, :])
            worst[(dk, conv)] = np.abs(s32.double().numpy() - s64).max(axis=1)  # per position
            # torch's fp32 sin/cos vs the correctly rounded fp32 value of sin/cos(fp32 argument)
            a64 = arg.double().numpy()
            for got, exact in ((s32, np.sin(a64)), (c32, np.cos(a64))):
                ulp_stats[0] += got.numel()
                ulp_stats[1] += int((got.numpy() != exact.astype(np.float32)).sum())
                ulp_stats[2] = max(ulp_stats[2], float(np.abs(got.double().numpy() - exact).max()))

            def L(t):
                return [[float(v) for v in r] for r in np.asarray(t, dtype=np.float64)]

            entries.append({
                "dk": dk,
                "convention": conv,
                "theta_formula": ("1/10000**linspace(0,1,dk/2) (torch fp32)" if conv == "linspace"
                                  else "1/10000**(arange(0,dk,2)/dk) (torch fp32)"),
                "theta": [float(v) for v in theta],
                "theta64": [float(v) for v in theta64],
                "arg_f32": L(arg.double().numpy()),
                "sin_f32": L(s32.double().numpy()),
                "cos_f32": L(c32.double().numpy()),
                "sin_true64": L(s64),
                "cos_true64": L(c64),
            })
    obj = {
        "description": ("Rotation angles. theta: fp32 values of each convention (length dk/2; torchscale's "
                        "stored angle buffer repeats each value twice, interleaved). arg_f32[p][i] = "
                        "float32(positions[p]) * theta[i] computed in fp32; sin_f32/cos_f32 = torch.sin/cos "
                        "of that fp32 argument (torch %s CPU); sin_true64/cos_true64 = sin/cos(n * theta64) "
                        "in float64 with theta64 the formula evaluated in float64. Note float32(16777217) = "
                        "16777216." % torch.__version__),
        "positions": ANGLE_POSITIONS,
        "entries": entries,
    }
    write_json(outdir / "angles.json", obj)
    log("[angles] torch fp32 sin/cos of the fp32 argument: %d of %d values differ from the correctly rounded "
        "fp32 result (max abs error vs exact %.1e)" % (ulp_stats[1], ulp_stats[0], ulp_stats[2]))
    log("[angles] max_i |sin_f32 - sin_true64| per position (fp32 argument vs float64 truth):")
    log("    %-14s" % "dk/convention" + "".join("%9d" % n for n in ANGLE_POSITIONS))
    for (dk, conv), w in worst.items():
        log("    %-14s" % ("%d/%s" % (dk, conv)) + "".join("%9.1e" % v for v in w))


def RetNetDecoderAngle(dk):
    """The angle buffer torchscale itself builds (H = 1 so that dk = D)."""
    args = RetNetConfig(decoder_embed_dim=dk, decoder_retention_heads=1, decoder_value_embed_dim=dk,
                        decoder_ffn_embed_dim=8, decoder_layers=1, vocab_size=4)
    from torchscale.architecture.retnet import RetNetRelPos
    return RetNetRelPos(args).angle


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data"), help="output directory")
    ap.add_argument("--only", nargs="*", help="fixture names to (re)generate")
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log("torch %s, torchscale %s, numpy %s" % (torch.__version__, TORCHSCALE_VERSION, np.__version__))
    for fx in TS_FIXTURES:
        if not a.only or fx["name"] in a.only:
            ts_fixture(fx, out)
    for fx in FLA_FIXTURES:
        if not a.only or fx["name"] in a.only:
            fla_fixture(fx, out)
    if not a.only or "angles" in a.only:
        make_angles(out)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log("total size of %s: %.2f MB" % (out, total / 1e6))
    assert total < 4e6, "fixtures too large"


if __name__ == "__main__":
    main()

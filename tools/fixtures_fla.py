"""fla-family fixtures (fla_*) for tools/make_fixtures.py.

Goldens come from an independent PyTorch re-implementation of flash-linear-attention's RetNet
(spec §3.3): fla itself needs torch >= 2 + triton, and the 0.6.0 wheel has no ``fla/ops`` to
borrow the naive kernel from.  Three forms are computed separately and must agree to 1e-5 in
fp32: the T x T masked parallel form, a token-by-token recurrence (fp32 state
S = gamma*S + k(x)v) and a chunked form (intra-chunk masked + inter-chunk state).  A float64 run
checks the fp32 rounding.  Weights (our own init) are saved in the fixture's dtype and read back
before the goldens are computed; ``fused_mlp`` writes the old fused ``mlp.gate_proj`` = [gate; up]
layout.
"""

import shutil

import torch
import torch.nn as nn

from fixtures_common import (DTYPES, F32, F64, load_weights, log, make_ids, rel_err, rms, save_logits,
                             save_weights, silu, write_json)


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

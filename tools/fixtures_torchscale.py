"""torchscale-family fixtures (ts_*) for tools/make_fixtures.py.

Goldens come from torchscale 0.3.0 (PyPI) ``RetNetDecoder`` run in fp32/eval on CPU:

* recurrent: token by token with ``incremental_state={}``, passing the whole prefix each step;
* chunkwise_cC: a decoder built with ``chunkwise_recurrent=True, recurrent_chunk_size=C`` and the
  same state dict;
* parallel: torchscale HEAD's denominator ``clamp(sum|A|, 1, 5e4)``.  0.3.0 still has the older
  signed form, so ``MultiScaleRetention.parallel_forward`` is patched while it runs
  (``head_parallel_denominator``); the unpatched result is stored too (parallel_signed).

An independent float64 re-implementation written from the spec (``ts_reimpl``, working from the
*saved files* the way an engine would) must agree with every torchscale mode to 1e-4 relative.

The weights use our own init (``ts_init_``) and are saved under one of three namings
(``ts_rename``): torchscale (no prefix), fairseq (``decoder.``) or syncdoth (``model.``, head
``lm_head.weight``).  torchscale is imported through the timm stand-in of torchscale_shim.py.
"""

import contextlib
import math
import shutil

import torch
import torch.nn as nn
import torch.nn.functional as F

from fixtures_common import (DTYPES, F32, F64, load_weights, log, make_ids, rel_err, rms, round_to,
                             save_logits, save_weights, silu, write_json)
from torchscale_shim import install_timm_stub, torchscale_version

install_timm_stub()
from torchscale.architecture.config import RetNetConfig  # noqa: E402
from torchscale.architecture.retnet import RetNetDecoder  # noqa: E402
from torchscale.component.multiscale_retention import MultiScaleRetention  # noqa: E402

TORCHSCALE_VERSION = torchscale_version()


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

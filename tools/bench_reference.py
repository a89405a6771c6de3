#!/usr/bin/env python3
"""Side-by-side speed of `retnet bench` and the PyTorch reference (torchscale 0.3.0) in one run.

    tools/bench_reference.py --shape 125m --threads 2 --dtype f32 -p 512 -n 128 -r 3 \\
        [--retnet PATH] [--chunk-size 64] [--json out.json]

Both sides run random-weight models of the same shape (weights differ: this measures speed only).
The retnet binary runs first (`retnet bench ... -o json`, a subprocess that has exited before the
reference model is built, so only one copy of the weights is ever in memory), then the reference:

* reference tg: torchscale's recurrent decoding as fairseq's generator drives it: one call per token
  with ``incremental_state`` and the whole prefix ``ids[:, :n+1]`` (torchscale embeds only the last
  token of it and takes the position from its length). Each repetition starts from an empty state,
  feeds one untimed token (position 0, which takes torchscale's cheaper first-step branch), then
  times N steps (positions 1..N), each producing the full [vocab] logits. The engine's tg times
  positions 0..N-1 from an empty state; a RetNet step costs the same at every position.
* reference pp: one parallel ``forward`` over N tokens (T×T retention), and a second row with
  ``chunkwise_recurrent=True`` and the same chunk size as the engine. Like the engine's prefill only
  the last position's logits are computed (``features_only=True`` + the head on the last row);
  ``--ref-all-logits`` computes all N rows, as a plain ``decoder(ids)`` call does. Neither torchscale
  mode leaves a state to decode from (the engine's prefill does).
* warm-up once (one full untimed repetition), then r timed repetitions: mean ± sample stddev tokens/s,
  the same statistics as ``retnet bench``.

Threads: ``torch.set_num_threads(t)``; OMP/OpenBLAS/MKL_NUM_THREADS are set to t before torch is
imported unless already set (Debian's torch calls OpenBLAS, whose pthread pool is sized separately).

dtype: f32 runs both in fp32. bf16/f16 cast the reference with ``.to(dtype)`` (as a user would; this
also casts torchscale's angle/decay buffers). If the reference cannot run in that dtype on this torch
(1.13 CPU has no fp16 matmul), it falls back to fp32 and says so in the table and the JSON.

Runs with the fixture venv (tools/setup_python.sh); if torchscale is not importable it re-executes
itself with $RETNET_FIXTURE_VENV, ~/.cache/retnet/fixture-venv or /tmp/venv when one exists.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torchscale_shim import install_timm_stub, torchscale_version  # noqa: E402  (standard library only)

REPO = Path(__file__).resolve().parent.parent

# Must match tools/cli/cmd_bench.cpp (parse_shape) and src/model/random_model.cpp.
SHAPES = {  # name: (D, L, H, vocab)
    "125m": (768, 12, 3, 32000),
    "350m": (1024, 24, 4, 32000),
    "1.3b": (2048, 24, 8, 32000),
    "2.7b": (2560, 32, 10, 32000),
    "6.7b": (4096, 32, 16, 32000),
    "tiny": (64, 2, 2, 512),
}


def parse_shape(s):
    if s in SHAPES:
        return SHAPES[s]
    try:
        d, l, h = (int(x) for x in s.split("x"))
    except ValueError:
        raise SystemExit("--shape: '%s' is not %s or WIDTHxLAYERSxHEADS" % (s, ", ".join(SHAPES)))
    if d < 2 or l < 1 or h < 1 or d % h or (d // h) % 2 or (2 * d) % h:
        raise SystemExit("--shape: '%s': width must divide by heads into an even key dim" % s)
    return d, l, h, 32000


def int_list(s):
    return [int(x) for x in str(s).split(",") if x.strip() != ""]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the module docstring / tools/README.md for what is timed.")
    ap.add_argument("--shape", default="125m", help="125m, 350m, 1.3b, 2.7b, 6.7b, tiny or WxLxH (default 125m)")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1, help="threads for both (default: all)")
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"], help="weight dtype (default f32)")
    ap.add_argument("-p", "--n-prompt", default="512", help="prompt lengths of pp tests, comma list; 0 skips (default 512)")
    ap.add_argument("-n", "--n-gen", default="128", help="generated tokens of tg tests, comma list; 0 skips (default 128)")
    ap.add_argument("-r", "--repetitions", type=int, default=5, help="timed repetitions (default 5)")
    ap.add_argument("--chunk-size", type=int, default=64, help="chunk size of chunkwise prefill, both sides (default 64)")
    ap.add_argument("--retnet", default=None, help="retnet binary (default: $RETNET_BIN, build/retnet, "
                    "/tmp/build-ref/retnet, or retnet on PATH)")
    ap.add_argument("--skip-retnet", action="store_true", help="run the reference only")
    ap.add_argument("--bf16-activations", action="store_true",
                    help="pass --bf16-activations to retnet bench (bf16 x bf16 prefill products on AVX512-BF16 "
                         "CPUs, as torch bf16 computes them; the retnet rows then say bf16+bf16act)")
    ap.add_argument("--ref-all-logits", action="store_true", help="reference pp computes logits for every position")
    ap.add_argument("--no-ref-chunkwise", action="store_true", help="skip the reference's chunkwise pp row")
    ap.add_argument("--omp-wait-policy", choices=["default", "passive", "active"], default="default",
                    help="set OMP_WAIT_POLICY for the reference before torch loads (default: leave the environment "
                    "alone, as a user would; GNU OpenMP then spin-waits, which collapses on an oversubscribed machine)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--json", default=None, help="write everything to this file")
    a = ap.parse_args()
    a.prompts = [p for p in int_list(a.n_prompt) if p > 0]
    a.gens = [n for n in int_list(a.n_gen) if n > 0]
    if a.repetitions < 1 or a.threads < 1 or a.chunk_size < 1:
        ap.error("--repetitions, --threads and --chunk-size must be >= 1")
    if not a.prompts and not a.gens:
        ap.error("nothing to run: -p and -n are both 0")
    return a


ARGS = parse_args()

# Thread pools must be sized before torch (and its BLAS) is loaded. The retnet binary gets the
# environment as it was (it links OpenBLAS too and sizes its own threads).
ENGINE_ENV = dict(os.environ)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(ARGS.threads))
if ARGS.omp_wait_policy != "default":
    os.environ["OMP_WAIT_POLICY"] = ARGS.omp_wait_policy.upper()
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _reexec_in_venv():
    if os.environ.get("RETNET_BENCH_REEXEC"):
        return
    cands = [os.environ.get("RETNET_FIXTURE_VENV"),
             os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "retnet", "fixture-venv"),
             "/tmp/venv"]
    for v in cands:
        if v and os.access(os.path.join(v, "bin", "python"), os.X_OK):
            py = os.path.join(v, "bin", "python")
            if os.path.realpath(py) == os.path.realpath(sys.executable) and sys.prefix == os.path.realpath(v):
                continue
            print("bench_reference: torchscale not importable here; re-running with %s" % py, file=sys.stderr)
            env = dict(ENGINE_ENV, RETNET_BENCH_REEXEC="1")  # the caller's environment, not our thread settings
            os.execve(py, [py, os.path.abspath(__file__)] + sys.argv[1:], env)


try:
    import torch
    import torch.nn as nn

    install_timm_stub()
    from torchscale.architecture.config import RetNetConfig
    from torchscale.architecture.retnet import RetNetDecoder
except ImportError as e:
    _reexec_in_venv()
    raise SystemExit("bench_reference: cannot import torch/torchscale (%s). Set up the venv with "
                     "tools/setup_python.sh and run this script with its python." % e)

TORCHSCALE_VERSION = torchscale_version()

TORCH_DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def mean_sd(xs):
    m = statistics.fmean(xs)
    return m, (statistics.stdev(xs) if len(xs) > 1 else 0.0)


# --------------------------------------------------------------------------
# machine
# --------------------------------------------------------------------------

def machine_info():
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and cpu in ("", platform.machine(), platform.processor()):
                    cpu = v.strip()
                elif k == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    feats = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gb = round(int(line.split()[1]) / 1048576, 1)
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    blas = []
    try:
        cfg = torch.__config__.show()
        m = re.search(r"CPU capability usage: (\S+)", cfg)
        if m:
            blas.append("ATen " + m.group(1))
        m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
        if m:
            blas.append("BLAS_INFO=" + m.group(1))
    except Exception:
        pass
    blas = ", ".join(blas) or "unknown"
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "features": feats, "mem_total_gb": mem_gb,
            "loadavg_at_start": [round(x, 2) for x in load] if load else None,
            "python": platform.python_version(), "torch": torch.__version__, "torchscale": TORCHSCALE_VERSION,
            "torch_blas": blas, "torch_threads": None,
            "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ}}


# --------------------------------------------------------------------------
# retnet binary
# --------------------------------------------------------------------------

def find_retnet(explicit):
    cands = [explicit] if explicit else [os.environ.get("RETNET_BIN"), str(REPO / "build" / "retnet"),
                                         "/tmp/build-ref/retnet", shutil.which("retnet")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    if explicit:
        raise SystemExit("--retnet: %s is not an executable file" % explicit)
    raise SystemExit("no retnet binary found: build it (cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "
                     "&& ninja -C build) and pass --retnet PATH, or use --skip-retnet")


def run_retnet(a):
    exe = find_retnet(a.retnet)
    cmd = [exe, "bench", "--shape", a.shape, "-t", str(a.threads), "--dtype", a.dtype,
           "-p", ",".join(map(str, a.prompts or [0])), "-n", ",".join(map(str, a.gens or [0])),
           "-r", str(a.repetitions), "--chunk-size", str(a.chunk_size), "-o", "json"]
    if a.bf16_activations:
        cmd.append("--bf16-activations")
    log("retnet: " + " ".join(cmd))
    t0 = time.perf_counter()
    env = {k: v for k, v in ENGINE_ENV.items() if k != "RETNET_BENCH_REEXEC"}
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    for line in p.stderr.splitlines():
        log("  retnet: " + line)
    if p.returncode != 0:
        raise SystemExit("retnet bench failed (exit %d):\n%s" % (p.returncode, p.stderr[-4000:]))
    out = p.stdout
    start = min([i for i in (out.find("["), out.find("{")) if i >= 0], default=-1)
    if start < 0:
        raise SystemExit("retnet bench printed no JSON:\n" + out[-2000:])
    rows = json.loads(out[start:])
    if isinstance(rows, dict):
        rows = [rows]
    log("retnet: done in %.1f s" % wall)
    return {"command": cmd, "wall_s": round(wall, 2), "stderr": p.stderr.strip(), "rows": rows}


# --------------------------------------------------------------------------
# reference
# --------------------------------------------------------------------------

class _NoInit:
    """Skip torch's default parameter init while building (every parameter is filled afterwards)."""

    NAMES = ("kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "uniform_", "normal_",
             "trunc_normal_", "zeros_", "ones_", "constant_")

    def __enter__(self):
        self.saved = {n: getattr(nn.init, n) for n in self.NAMES if hasattr(nn.init, n)}
        for n in self.saved:
            setattr(nn.init, n, lambda t, *args, **kw: t)
        return self

    def __exit__(self, *exc):
        for n, f in self.saved.items():
            setattr(nn.init, n, f)
        return False


def n_params_of(D, L, V):
    """Parameters of the shape (embedding, head, L layers of q,k [D,D], v,g,out [2D,D], GLU 3×[2D,D], norms)."""
    return 2 * V * D + D + L * (2 * D * D + 3 * 2 * D * D + 3 * 2 * D * D + 2 * D) + D


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def build_reference(D, L, H, V, chunk, seed, dtype):
    """torchscale RetNetDecoder with the engine's random-model conventions (see random_model.cpp).

    Parameters are allocated without init (untouched pages cost no memory), then each one is filled and
    stored in `dtype` on its own, so the peak is one copy of the weights in that dtype."""
    args = RetNetConfig(
        vocab_size=V, decoder_embed_dim=D, decoder_value_embed_dim=2 * D, decoder_ffn_embed_dim=2 * D,
        decoder_layers=L, decoder_retention_heads=H, activation_fn="swish",
        no_scale_embedding=False, layernorm_embedding=True, layernorm_eps=1e-6,
        share_decoder_input_output_embed=False, chunkwise_recurrent=False, recurrent_chunk_size=chunk,
        dropout=0.0, activation_dropout=0.0, drop_path_rate=0.0,
    )
    with _NoInit():
        embed = nn.Embedding(V, D)
        head = nn.Linear(D, V, bias=False)
        dec = RetNetDecoder(args, embed_tokens=embed, output_projection=head)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in dec.named_parameters():
            data = torch.empty(p.shape, dtype=torch.float32)
            if p.dim() == 2:  # uniform(±sqrt(3/in)): unit-variance outputs, like the engine's random models
                a = (3.0 / p.shape[1]) ** 0.5
                data.uniform_(-a, a, generator=g)
            else:
                data.fill_(1.0)
            p.data = data if dtype == torch.float32 else data.to(dtype)
            del data
    dec.to(dtype)  # the angle/decay buffers, as a user's model.to(dtype) would
    dec.eval()
    n_params = sum(p.numel() for p in dec.parameters())
    return dec, n_params


def set_chunkwise(dec, on, chunk):
    # RetNetDecoder reads these attributes at forward time; a decoder built with chunkwise_recurrent=True
    # differs in nothing else, so one model serves both pp modes (no second copy of the weights).
    dec.chunkwise_recurrent = on
    dec.recurrent_chunk_size = chunk
    dec.retnet_rel_pos.recurrent_chunk_size = chunk


def ref_prefill(dec, ids, all_logits):
    x, _ = dec(ids, features_only=True)
    return dec.output_layer(x if all_logits else x[:, -1:])


def ref_decode(dec, ids, n_steps, timed_from=1):
    """Recurrent decoding of ids[0..n_steps): returns the seconds spent on steps >= timed_from."""
    state = {}
    t0 = None
    for n in range(n_steps):
        if n == timed_from:
            t0 = time.perf_counter()
        logits, _ = dec(ids[:, : n + 1], incremental_state=state)
    assert logits.shape[1] == 1
    return time.perf_counter() - t0


def bench_reference(a, D, L, H, V, notes):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    tdt = TORCH_DTYPES[a.dtype]
    dec, n_params = build_reference(D, L, H, V, a.chunk_size, a.seed, tdt)
    log("reference: built torchscale RetNetDecoder D %d L %d H %d V %d (%.1f M params, %s) in %.1f s"
        % (D, L, H, V, n_params / 1e6, a.dtype, time.perf_counter() - t0))
    ref_dtype = a.dtype
    g = torch.Generator().manual_seed(a.seed + 1)
    max_len = max(a.prompts + [n + 1 for n in a.gens])
    ids = torch.randint(0, V, (1, max_len), generator=g)

    with torch.no_grad():
        if tdt != torch.float32:
            try:  # every path once, on a few tokens
                k = min(8, max_len)
                ref_prefill(dec, ids[:, :k], False)
                set_chunkwise(dec, True, a.chunk_size)
                ref_prefill(dec, ids[:, :k], False)
                set_chunkwise(dec, False, a.chunk_size)
                ref_decode(dec, ids, 2)
            except Exception as e:  # noqa: BLE001 (torch raises RuntimeError/NotImplementedError)
                set_chunkwise(dec, False, a.chunk_size)
                msg = ("reference cannot run in %s on torch %s CPU (%s: %s); the reference ran in fp32 instead, "
                       "so the speed-up compares retnet %s with reference fp32"
                       % (a.dtype, torch.__version__, type(e).__name__, str(e).splitlines()[0], a.dtype))
                log("reference: " + msg)
                notes.append(msg)
                avail = mem_available()
                if avail is not None and n_params * 4 > 0.9 * avail:
                    raise SystemExit("reference: no room for the fp32 fallback (%.1f GB needed, %.1f GB available)"
                                     % (n_params * 4 / 1e9, avail / 1e9))
                dec.float()
                ref_dtype = "f32"

        rows = []

        def timed(test, kind, n_tokens, fn):
            log("reference: %s (%s) warm-up" % (test, kind))
            w0 = time.perf_counter()
            fn()
            log("reference: %s warm-up %.2f s" % (test, time.perf_counter() - w0))
            samples = []
            for rep in range(a.repetitions):
                s = fn()
                samples.append(n_tokens / s)
                log("reference: %s rep %d: %.3f s, %.2f t/s" % (test, rep + 1, s, n_tokens / s))
            m, sd = mean_sd(samples)
            rows.append({"test": test, "mode": kind, "n_prompt": n_tokens if test.startswith("pp") else 0,
                         "n_gen": n_tokens if test.startswith("tg") else 0, "n_threads": a.threads,
                         "type": ref_dtype, "chunk_size": a.chunk_size if kind == "chunkwise" else None,
                         "avg_ts": m, "stddev_ts": sd, "samples_ts": samples,
                         "avg_ms_per_token": 1e3 / m, "model_n_params": n_params})

        def prefill_fn(p):
            def f():
                t = time.perf_counter()
                ref_prefill(dec, ids[:, :p], a.ref_all_logits)
                return time.perf_counter() - t
            return f

        for p in a.prompts:
            set_chunkwise(dec, False, a.chunk_size)
            timed("pp%d" % p, "parallel", p, prefill_fn(p))
            if not a.no_ref_chunkwise:
                set_chunkwise(dec, True, a.chunk_size)
                timed("pp%d" % p, "chunkwise", p, prefill_fn(p))
                set_chunkwise(dec, False, a.chunk_size)
        for n in a.gens:
            timed("tg%d" % n, "recurrent", n, lambda n=n: ref_decode(dec, ids, n + 1, timed_from=1))
    return rows, ref_dtype, n_params  # the model is freed with this frame


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def fmt(m, sd):
    return "%.2f ± %.2f" % (m, sd) if m < 100 else "%.1f ± %.1f" % (m, sd)


def main():
    a = ARGS
    D, L, H, V = parse_shape(a.shape)
    mi = machine_info()
    notes = []
    log("machine: %s, %s logical CPUs, load average %s; torch %s (%s), torchscale %s"
        % (mi["cpu"], mi["logical_cpus"], mi["loadavg_at_start"], mi["torch"], mi["torch_blas"], mi["torchscale"]))
    t_start = time.perf_counter()

    # One copy of the weights at a time: the engine's (in its own process, gone before the reference is
    # built), then the reference's. A reference that falls back to fp32 needs the fp32 size.
    need = n_params_of(D, L, V) * (2 if a.dtype == "bf16" else 4)  # f16 falls back to fp32 on CPU torch
    avail = mem_available()
    if avail is not None and need > 0.9 * avail:
        raise SystemExit("shape %s needs about %.1f GB of weights for the reference but only %.1f GB of memory "
                         "is available" % (a.shape, need / 1e9, avail / 1e9))

    eng = None
    if not a.skip_retnet:
        eng = run_retnet(a)
    t_ref = time.perf_counter()
    ref_rows, ref_dtype, ref_params = bench_reference(a, D, L, H, V, notes)
    ref_wall = time.perf_counter() - t_ref
    mi["torch_threads"] = torch.get_num_threads()

    eng_by_test = {}
    if eng:
        for r in eng["rows"]:
            if r.get("n_depth", 0) == 0 and r.get("n_batch", 1) == 1:
                eng_by_test.setdefault(r["test"], r)
        e_params = next(iter(eng_by_test.values()), {}).get("model_n_params")
        if e_params is not None and e_params != ref_params:
            notes.append("parameter counts differ: retnet %d, reference %d" % (e_params, ref_params))

    table = []
    for r in ref_rows:
        e = eng_by_test.get(r["test"])
        ref_label = {"parallel": "parallel", "chunkwise": "chunkwise C=%d" % a.chunk_size,
                     "recurrent": "recurrent"}[r["mode"]]
        row = {"test": r["test"], "reference_mode": r["mode"], "retnet_avg_ts": e["avg_ts"] if e else None,
               "retnet_stddev_ts": e["stddev_ts"] if e else None, "reference_avg_ts": r["avg_ts"],
               "reference_stddev_ts": r["stddev_ts"],
               "speedup": (e["avg_ts"] / r["avg_ts"]) if e else None, "label": "%s (ref %s)" % (r["test"], ref_label)}
        table.append(row)

    eng_desc = "retnet %s" % (eng["rows"][0].get("build_commit", "") if eng and eng["rows"] else "(skipped)")
    lines = []
    lines.append("shape %s (D %d, L %d, H %d, vocab %d, value/FFN dim %d), %d threads, dtype %s (reference ran %s), "
                 "chunk %d, %d reps after 1 warm-up" % (a.shape, D, L, H, V, 2 * D, a.threads, a.dtype, ref_dtype,
                                                        a.chunk_size, a.repetitions))
    if a.bf16_activations:
        applied = bool(eng and eng["rows"] and all(r.get("bf16_activations") for r in eng["rows"]))
        lines.append("retnet --bf16-activations: %s" % (
            "on (prefill products bf16 x bf16 with fp32 sums, as the bf16 reference computes them)" if applied else
            "asked for but not applied (no AVX512-BF16 or no BF16 weights; see the retnet log)"))
    lines.append("machine: %s, %s logical CPUs (%s), %s GB RAM, load average at start %s"
                 % (mi["cpu"], mi["logical_cpus"], " ".join(mi["features"]), mi["mem_total_gb"], mi["loadavg_at_start"]))
    lines.append("reference: torch %s (%s, %d threads; %s), torchscale %s, python %s; %s"
                 % (mi["torch"], mi["torch_blas"], mi["torch_threads"],
                    " ".join("%s=%s" % kv for kv in mi["thread_env"].items()), mi["torchscale"], mi["python"], eng_desc))
    lines.append("")
    lines.append("| test | retnet t/s | reference t/s | speed-up (retnet/reference) |")
    lines.append("| --- | ---: | ---: | ---: |")
    for t in table:
        lines.append("| %s | %s | %s | %s |" % (
            t["label"], fmt(t["retnet_avg_ts"], t["retnet_stddev_ts"]) if t["retnet_avg_ts"] is not None else "-",
            fmt(t["reference_avg_ts"], t["reference_stddev_ts"]),
            "%.2fx" % t["speedup"] if t["speedup"] is not None else "-"))
    lines.append("")
    lines.append("retnet pp = chunkwise prefill (chunk %d) returning the last logits and a decode state; retnet tg = "
                 "N decode steps from an empty state." % a.chunk_size)
    lines.append("reference pp = one forward over N tokens, %s; reference tg = torchscale recurrent decoding with "
                 "incremental_state and the growing prefix, N timed steps after 1 untimed token."
                 % ("logits for every position" if a.ref_all_logits else "head on the last position only"))
    load = mi["loadavg_at_start"]
    if a.threads > 1 and load and mi["logical_cpus"] and load[0] > mi["logical_cpus"] - 0.5 \
            and "OMP_WAIT_POLICY" not in mi["thread_env"]:
        notes.append("the load average at start (%.1f) leaves no idle CPU for %d threads: GNU OpenMP's spin-waiting "
                     "makes multi-threaded torch far slower on a busy machine than on an idle one; compare with "
                     "--omp-wait-policy passive or -t 1" % (load[0], a.threads))
    for n in notes:
        lines.append("NOTE: " + n)
    total = time.perf_counter() - t_start
    lines.append("wall time: retnet %s s, reference %.1f s, total %.1f s"
                 % (eng["wall_s"] if eng else "-", ref_wall, total))
    print("\n".join(lines))

    if a.json:
        out = {"args": {k: v for k, v in vars(a).items()}, "shape": {"name": a.shape, "D": D, "L": L, "H": H,
               "vocab": V, "value_dim": 2 * D, "ffn_dim": 2 * D}, "machine": mi, "reference_dtype": ref_dtype,
               "notes": notes, "table": table, "reference": ref_rows, "retnet": eng,
               "wall_s": {"retnet": eng["wall_s"] if eng else None, "reference": round(ref_wall, 2),
                          "total": round(total, 2)}, "markdown": "\n".join(lines)}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        log("wrote " + a.json)


if __name__ == "__main__":
    main()

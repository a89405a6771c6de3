#!/usr/bin/env python3
"""Side-by-side speed of `retnet bench` and llama.cpp's `llama-bench` in one run, per weight type and depth.

    tools/bench_llamacpp.py --shape 125m --types bf16,q8_0,q4_0,q4_k -t 2 -n 32 -d 0,4096 -p 512 -r 3 \\
        [--rounds 1] [--retnet PATH] [--llama-cpp-python VERSION] [--q4k Q4_K_S] [--json out.json]

What it does, each step cached so that a second run only measures:

1. **llama.cpp from source.** The llama-cpp-python sdist on PyPI vendors llama.cpp; `pip download
   --no-binary llama-cpp-python --no-deps llama-cpp-python==VERSION` fetches it (default version pinned
   below, so the build is reproducible and a cached build needs no network), and only the two tools are
   built: `llama-bench` and `llama-quantize`, Release, `GGML_NATIVE=ON` (the CPU it runs on, AVX-512 where
   present, as a llama.cpp user builds it), CPU only (no CUDA, no OpenSSL/curl, no tests or server), with
   `--jobs` compile jobs (default 2). The build lives in ~/.cache/retnet/llama.cpp/VERSION/ ($RETNET_CACHE
   or $XDG_CACHE_HOME/retnet overrides the root); delete that folder to rebuild.
2. **A Llama-architecture GGUF with random weights**, written with the `gguf` package from PyPI
   (llama.cpp's own writer library) in a venv ~/.cache/retnet/llamacpp-venv (created on first use, like
   tools/setup_python.sh; this script re-runs itself there). It is matched in parameters per layer to the
   retnet `--shape` (tools/cli/cmd_bench.cpp: D, L, heads; value dim and GLU FFN 2·D; vocabulary 32000):
     * a retnet layer has q, k [D, D], v, g [2D, D], out [D, 2D] = 8·D² and a GLU FFN with three
       [2D, D] matrices = 6·D²: 14·D² per layer;
     * a Llama layer has q, k, v, o [D, D] (no grouped-query attention: n_kv_heads = n_heads, head dim
       128) = 4·D² and a SwiGLU FFN of width F: 3·D·F. F = 10·D/3 rounded to a multiple of 256 (so that
       every type's blocks, Q4_K's 256 included, fit each row): 125m: F = 2560, exactly 14·D² per layer;
       1.3b: F = 6912, 4·D² + 3·D·F = 59.25 M vs 58.72 M per layer (+0.9%);
     * both have untied embedding and head [32000, D] and two norm vectors per layer (retnet has a
       layernorm after the embedding as well: D more). The script prints both totals (125m: 148.262 M
       retnet vs 148.262 M llama, 768 apart; 1.3b: 1540.5 M retnet vs 1553.0 M llama, +0.8%).
   Weights are uniform(±sqrt(3/in)) like the engine's random models, stored in BF16 (norms F32), with
   a dummy 32000-token SentencePiece vocabulary (llama-bench draws random token ids from it). They
   differ from retnet's: this measures speed only.
3. **One GGUF per type** by `llama-quantize` from the BF16 file: bf16 → BF16 (the file itself), f16 → F16,
   f32 → F32, q8_0 → Q8_0, q4_0 → Q4_0, q4_k → Q4_K_S by default (`--q4k Q4_K_M` to change). Q4_K_S is
   the llama.cpp mix closest to one uniform 4-bit K type (Q4_K_M stores about half of attn_v and
   ffn_down in Q6_K); llama-quantize keeps its own defaults otherwise (the head in Q6_K for the
   K and legacy 4-bit types, norms F32), as a llama.cpp user gets them; `--quantize-args "--pure"`
   (or `--output-tensor-type ...`) passes options through, and the table names what was used.
4. **Both engines, interleaved**: for each round (`--rounds`), for each type: `retnet bench --shape S
   --dtype TYPE` (tg at each depth, then pp), then `llama-bench` on that type's GGUF (the same tests),
   same threads and repetitions (each side runs its own warm-up). A type `retnet bench` rejects (a
   quantized type before this build has it) is skipped for retnet with the one-line error it gave, and
   llama.cpp still runs. A type llama.cpp cannot make is skipped for it the same way.
5. **The table**: per type and test (tg at depth 0 and each `-d`, pp), tokens/s of each (mean ± stddev
   over the repetitions of all rounds; for several rounds the stddev is over the round means) and the
   ratio retnet/llama.cpp. `--json` writes every row and the commands.

Threads: both get `-t`; llama-bench's other settings are its defaults (flash attention `auto`, batch
2048/512, KV cache f16, mmap) unless `--llama-args` adds some (e.g. "-fa 1").
"""

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LLAMA_CPP_PYTHON = "0.3.36"  # the sdist whose vendored llama.cpp is built (a later one: --llama-cpp-python)
GGUF_LAYOUT = 1  # bump when the generated GGUF changes, so cached files are rebuilt

# Must match tools/cli/cmd_bench.cpp (parse_shape): name -> (D, L, H, vocab); value dim and FFN are 2·D.
SHAPES = {
    "125m": (768, 12, 3, 32000),
    "350m": (1024, 24, 4, 32000),
    "1.3b": (2048, 24, 8, 32000),
    "2.7b": (2560, 32, 10, 32000),
    "6.7b": (4096, 32, 16, 32000),
}
# retnet --dtype -> llama-quantize type (None: the BF16 file itself)
LLAMA_TYPES = {"bf16": None, "f16": "F16", "f32": "F32", "q8_0": "Q8_0", "q4_0": "Q4_0", "q4_k": "Q4_K_S"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cache_root():
    if os.environ.get("RETNET_CACHE"):
        return Path(os.environ["RETNET_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))) / "retnet"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the module docstring / tools/README.md for what is built and timed.")
    ap.add_argument("--shape", default="125m", choices=list(SHAPES), help="retnet shape to match (default 125m)")
    ap.add_argument("--types", default="bf16,q8_0,q4_0,q4_k",
                    help="weight types, retnet --dtype names, comma list (default bf16,q8_0,q4_0,q4_k; "
                    "known to the GGUF side: %s)" % ",".join(LLAMA_TYPES))
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1, help="threads for both (default: all)")
    ap.add_argument("-n", "--n-gen", type=int, default=32, help="tokens of the tg tests; 0 skips (default 32)")
    ap.add_argument("-d", "--n-depth", default="0,4096", help="depths of the tg tests, comma list (default 0,4096)")
    ap.add_argument("-p", "--n-prompt", type=int, default=512, help="tokens of the pp test; 0 skips (default 512)")
    ap.add_argument("-r", "--repetitions", type=int, default=3, help="timed repetitions per test and round (default 3)")
    ap.add_argument("--rounds", type=int, default=1, help="times to alternate the two engines (default 1)")
    ap.add_argument("--retnet", default=None, help="retnet binary (default: $RETNET_BIN, build/retnet, or retnet on PATH)")
    ap.add_argument("--retnet-args", default="", help="extra arguments for retnet bench, e.g. '--bf16-activations'")
    ap.add_argument("--llama-args", default="", help="extra arguments for llama-bench, e.g. '-fa 1'")
    ap.add_argument("--quantize-args", default="", help="extra arguments for llama-quantize, e.g. '--pure'")
    ap.add_argument("--q4k", default="Q4_K_S", choices=["Q4_K_S", "Q4_K_M"], help="llama.cpp type for q4_k (default Q4_K_S)")
    ap.add_argument("--llama-cpp-python", default=DEFAULT_LLAMA_CPP_PYTHON,
                    help="llama-cpp-python sdist version whose llama.cpp is built (default %s)" % DEFAULT_LLAMA_CPP_PYTHON)
    ap.add_argument("--jobs", type=int, default=2, help="compile jobs for the llama.cpp build (default 2)")
    ap.add_argument("--build-only", action="store_true", help="build llama.cpp (and write the GGUFs), measure nothing")
    ap.add_argument("--seed", type=int, default=1234, help="seed of the random GGUF weights")
    ap.add_argument("--json", default=None, help="write everything to this file")
    a = ap.parse_args()
    a.type_list = [t.strip() for t in a.types.split(",") if t.strip()]
    try:
        a.depths = [int(x) for x in a.n_depth.split(",") if x.strip() != ""]
    except ValueError:
        ap.error("--n-depth: '%s' is not a comma list of integers" % a.n_depth)
    if not a.type_list:
        ap.error("--types: empty")
    if a.repetitions < 1 or a.threads < 1 or a.rounds < 1 or a.jobs < 1:
        ap.error("--repetitions, --threads, --rounds and --jobs must be >= 1")
    if a.n_gen < 0 or a.n_prompt < 0 or any(d < 0 for d in a.depths):
        ap.error("-n, -p and -d must be >= 0")
    if a.n_gen == 0 and a.n_prompt == 0:
        ap.error("nothing to run: -n and -p are both 0")
    if a.n_gen > 0 and not a.depths:
        a.depths = [0]
    LLAMA_TYPES["q4_k"] = a.q4k
    return a


# --------------------------------------------------------------------------
# the venv with the gguf package (numpy comes with it)
# --------------------------------------------------------------------------

def ensure_gguf():
    """Imports gguf and numpy, re-running this script in the cached venv (made on first use) if needed."""
    try:
        import gguf  # noqa: F401
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    venv = cache_root() / "llamacpp-venv"
    py = venv / "bin" / "python"
    if os.environ.get("RETNET_LLAMACPP_REEXEC"):
        raise SystemExit("bench_llamacpp: %s cannot import gguf and numpy; remove %s and run again" % (py, venv))
    if not os.access(py, os.X_OK):
        log("bench_llamacpp: creating venv %s (the gguf package from PyPI)" % venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    try:
        subprocess.run([str(py), "-c", "import gguf, numpy"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "gguf"], check=True)
    log("bench_llamacpp: re-running with %s" % py)
    os.execve(str(py), [str(py), os.path.abspath(__file__)] + sys.argv[1:], dict(os.environ, RETNET_LLAMACPP_REEXEC="1"))


# --------------------------------------------------------------------------
# llama.cpp from the llama-cpp-python sdist
# --------------------------------------------------------------------------

def run_logged(cmd, **kw):
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    p = subprocess.run([str(c) for c in cmd], **kw)
    if p.returncode != 0:
        raise SystemExit("bench_llamacpp: command failed (exit %d): %s" % (p.returncode, " ".join(map(str, cmd))))
    return p


def build_llamacpp(version, jobs):
    root = cache_root() / "llama.cpp" / version
    bindir = root / "build" / "bin"
    tools = {"bench": bindir / "llama-bench", "quantize": bindir / "llama-quantize"}
    if (root / "build.ok").exists() and all(os.access(t, os.X_OK) for t in tools.values()):
        log("llama.cpp: cached build %s" % bindir)
        return tools
    root.mkdir(parents=True, exist_ok=True)
    sdist = root / ("llama_cpp_python-%s.tar.gz" % version)
    if not sdist.exists():
        # --no-binary for this package only: its build dependencies come as wheels (pip prepares its metadata).
        run_logged([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-binary", "llama-cpp-python", "llama-cpp-python==%s" % version, "-d", root])
        if not sdist.exists():
            raise SystemExit("bench_llamacpp: pip download left no %s" % sdist)
    src_parent = root / "src"
    prefix = "llama_cpp_python-%s/vendor/llama.cpp/" % version
    src = src_parent / prefix
    if not (src / "CMakeLists.txt").exists():
        log("llama.cpp: extracting %s" % prefix)
        with tarfile.open(sdist) as tf:
            members = [m for m in tf.getmembers() if m.name.startswith(prefix) and (m.isfile() or m.isdir())]
            if not members:
                raise SystemExit("bench_llamacpp: %s holds no %s" % (sdist, prefix))
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(src_parent, members=members, **kw)
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    run_logged(["cmake", "-S", src, "-B", root / "build", *gen, "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON",
                "-DGGML_CUDA=OFF", "-DGGML_METAL=OFF", "-DGGML_VULKAN=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF",
                "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF",
                "-DBUILD_SHARED_LIBS=OFF"], stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    run_logged(["cmake", "--build", root / "build", "--target", "llama-bench", "llama-quantize", "-j", str(jobs)],
               stdout=subprocess.DEVNULL)
    log("llama.cpp: built in %.0f s" % (time.perf_counter() - t0))
    for t in tools.values():
        if not os.access(t, os.X_OK):
            raise SystemExit("bench_llamacpp: the build made no %s" % t)
    (root / "build.ok").write_text("llama-cpp-python %s\n" % version)
    return tools


# --------------------------------------------------------------------------
# the GGUF
# --------------------------------------------------------------------------

def llama_dims(shape):
    D, L, H, V = SHAPES[shape]
    F = max(256, round(10 * D / 3 / 256) * 256)
    head_dim = 128 if D % 128 == 0 else 64
    return {"D": D, "L": L, "V": V, "F": F, "n_head": D // head_dim, "head_dim": head_dim, "retnet_heads": H}


def params_retnet(shape):
    D, L, _, V = SHAPES[shape]
    return 2 * V * D + D + L * (14 * D * D + 2 * D) + D  # embed, head, emb norm, layers (+2 norms), final norm


def params_llama(dims):
    D, L, V, F = dims["D"], dims["L"], dims["V"], dims["F"]
    return 2 * V * D + L * (4 * D * D + 3 * D * F + 2 * D) + D


def write_gguf(path, shape, seed):
    """Streams a BF16 Llama GGUF to `path` (one tensor in memory at a time)."""
    import gguf
    import numpy as np

    d = llama_dims(shape)
    D, L, V, F = d["D"], d["L"], d["V"], d["F"]
    tensors = [("token_embd.weight", (V, D))]
    for i in range(L):
        p = "blk.%d." % i
        tensors += [(p + "attn_norm.weight", (D,)), (p + "attn_q.weight", (D, D)), (p + "attn_k.weight", (D, D)),
                    (p + "attn_v.weight", (D, D)), (p + "attn_output.weight", (D, D)), (p + "ffn_norm.weight", (D,)),
                    (p + "ffn_gate.weight", (F, D)), (p + "ffn_up.weight", (F, D)), (p + "ffn_down.weight", (D, F))]
    tensors += [("output_norm.weight", (D,)), ("output.weight", (V, D))]

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("retnet-bench-%s-random" % shape)
    w.add_context_length(1 << 16)
    w.add_embedding_length(D)
    w.add_block_count(L)
    w.add_feed_forward_length(F)
    w.add_head_count(d["n_head"])
    w.add_head_count_kv(d["n_head"])
    w.add_rope_dimension_count(d["head_dim"])
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(V)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    # A SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens, then placeholders.
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    toks += ["tok%d" % i for i in range(V - len(toks))]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    types += [gguf.TokenType.NORMAL] * (V - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([-float(i) for i in range(V)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    for name, shp in tensors:
        if len(shp) == 1:
            w.add_tensor_info(name, shp, np.dtype(np.float32), 4 * shp[0])
        else:
            w.add_tensor_info(name, shp, np.dtype(np.uint16), 2 * shp[0] * shp[1], raw_dtype=gguf.GGMLQuantizationType.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    for name, shp in tensors:
        if len(shp) == 1:
            w.write_tensor_data(np.ones(shp, dtype=np.float32))
            continue
        a = np.float32((3.0 / shp[1]) ** 0.5)
        x = rng.uniform(-a, a, size=shp).astype(np.float32)
        bits = x.view(np.uint32)
        # fp32 -> bf16, round to nearest even (finite values only here)
        bf = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
        del x, bits
        w.write_tensor_data(bf)
    w.close()


def ggufs_for(a, tools):
    """The GGUF of each type (made once, cached by shape, seed and layout)."""
    d = cache_root() / "llamacpp-models" / ("%s-seed%d-v%d" % (a.shape, a.seed, GGUF_LAYOUT))
    d.mkdir(parents=True, exist_ok=True)
    base = d / "bf16.gguf"
    if not base.exists():
        ensure_gguf()
        log("gguf: writing %s (random BF16 weights, Llama %s)" % (base, llama_dims(a.shape)))
        t0 = time.perf_counter()
        tmp = base.with_suffix(".tmp")
        write_gguf(tmp, a.shape, a.seed)
        tmp.rename(base)
        log("gguf: written in %.0f s" % (time.perf_counter() - t0))
    out, why = {}, {}
    qargs = shlex.split(a.quantize_args)
    for t in a.type_list:
        lt = LLAMA_TYPES.get(t)
        if t not in LLAMA_TYPES:
            why[t] = "no llama.cpp type is known for '%s' (known: %s)" % (t, ", ".join(LLAMA_TYPES))
            continue
        if lt is None:
            out[t] = base
            continue
        tag = re.sub(r"[^A-Za-z0-9_.-]", "_", "_".join(qargs))
        f = d / ("%s%s.gguf" % (lt, "-" + tag if tag else ""))
        if not f.exists():
            tmp = f.with_suffix(".tmp")
            p = subprocess.run([str(tools["quantize"]), *qargs, str(base), str(tmp), lt, str(a.threads)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if p.returncode != 0:
                why[t] = "llama-quantize %s failed (exit %d): %s" % (lt, p.returncode, p.stdout.strip().splitlines()[-1:])
                continue
            tmp.rename(f)
            log("gguf: quantized %s" % f)
        out[t] = f
    return out, why


# --------------------------------------------------------------------------
# the two engines
# --------------------------------------------------------------------------

def find_retnet(explicit):
    cands = [explicit] if explicit else [os.environ.get("RETNET_BIN"), str(REPO / "build" / "retnet"), shutil.which("retnet")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    if explicit:
        raise SystemExit("--retnet: %s is not an executable file" % explicit)
    raise SystemExit("no retnet binary found: build it (tools/build.sh) or pass --retnet PATH")


def parse_json_rows(out):
    start = min([i for i in (out.find("["), out.find("{")) if i >= 0], default=-1)
    if start < 0:
        return None
    try:
        rows = json.loads(out[start:])
    except ValueError:
        return None  # the caller reports the output as unreadable
    return [rows] if isinstance(rows, dict) else rows


def test_groups(a):
    """(n_prompt, n_gen, depths) per invocation: tg at every depth, pp at depth 0."""
    g = []
    if a.n_gen > 0:
        g.append((0, a.n_gen, a.depths))
    if a.n_prompt > 0:
        g.append((a.n_prompt, 0, [0]))
    return g


def run_retnet(a, exe, dtype):
    """Rows {test, depth, samples} of retnet bench, or (None, one-line reason) when it refuses the type."""
    rows = []
    for p, n, depths in test_groups(a):
        cmd = [exe, "bench", "--shape", a.shape, "--dtype", dtype, "-t", str(a.threads), "-p", str(p), "-n", str(n),
               "-d", ",".join(map(str, depths)), "-r", str(a.repetitions), "-o", "json", *shlex.split(a.retnet_args)]
        log("retnet: " + " ".join(cmd))
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            err = [l for l in r.stderr.splitlines() if l.startswith("error:")]
            return None, (err[-1] if err else "exit %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
        parsed = parse_json_rows(r.stdout)
        if not parsed:
            return None, "retnet bench printed no JSON rows: %s" % r.stdout.strip()[-200:]
        for row in parsed:
            rows.append({"test": row["test"], "depth": row.get("n_depth", 0), "samples": row.get("samples_ts") or
                         [row["avg_ts"]], "avg_ts": row["avg_ts"], "model_n_params": row.get("model_n_params"),
                         "model_size": row.get("model_size"), "build_commit": row.get("build_commit")})
    return rows, None


def run_llama(a, tools, gguf_path):
    rows = []
    for p, n, depths in test_groups(a):
        cmd = [str(tools["bench"]), "-m", str(gguf_path), "-t", str(a.threads), "-p", str(p), "-n", str(n),
               "-d", ",".join(map(str, depths)), "-r", str(a.repetitions), "-o", "json", *shlex.split(a.llama_args)]
        log("llama.cpp: " + " ".join(cmd))
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            return None, "llama-bench exit %d: %s" % (r.returncode, (r.stderr.strip().splitlines() or [""])[-1])
        parsed = parse_json_rows(r.stdout)
        if not parsed:
            return None, "llama-bench printed no JSON rows: %s" % r.stdout.strip()[-200:]
        for row in parsed:
            test = "pp%d" % row["n_prompt"] if row["n_prompt"] > 0 else "tg%d" % row["n_gen"]
            rows.append({"test": test, "depth": row.get("n_depth", 0), "samples": row.get("samples_ts") or
                         [row["avg_ts"]], "avg_ts": row["avg_ts"], "model_n_params": row.get("model_n_params"),
                         "model_size": row.get("model_size"), "type": re.sub(r"^\S+ \S+ ", "", row.get("model_type") or ""),  # "llama ?B Q8_0" -> "Q8_0"
                         "build_commit": row.get("build_commit"), "flash_attn": row.get("flash_attn")})
    return rows, None


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def machine_info():
    cpu, flags = platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == "model name" and cpu == platform.machine():
                    cpu = v.strip()
                elif k.strip() == "flags" and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    feats = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni") if f in flags]
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "features": feats, "loadavg_at_start": load}


def stats(samples_by_round):
    """mean ± stddev: over the samples of one round, over the round means for several."""
    if len(samples_by_round) == 1:
        xs = samples_by_round[0]
    else:
        xs = [statistics.fmean(s) for s in samples_by_round]
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt(m, sd):
    return "%.2f ± %.2f" % (m, sd) if m < 100 else "%.1f ± %.1f" % (m, sd)


def main():
    a = parse_args()
    mi = machine_info()
    t_start = time.perf_counter()
    tools = build_llamacpp(a.llama_cpp_python, a.jobs)
    ggufs, gguf_why = ggufs_for(a, tools)
    if a.build_only:
        log("built: %s; GGUFs: %s" % (tools, {t: str(p) for t, p in ggufs.items()}))
        return
    exe = find_retnet(a.retnet)
    dims = llama_dims(a.shape)
    log("machine: %s, %s logical CPUs (%s), load average %s" % (mi["cpu"], mi["logical_cpus"], " ".join(mi["features"]),
                                                               mi["loadavg_at_start"]))
    # results[(engine, type, test, depth)] = [samples of round 1, round 2, ...]
    results, skipped, meta = {}, {}, {"retnet": {}, "llama.cpp": {}}
    for t, why in gguf_why.items():
        skipped[("llama.cpp", t)] = why
    for rnd in range(a.rounds):
        for t in a.type_list:
            if ("retnet", t) not in skipped:
                rows, why = run_retnet(a, exe, t)
                if rows is None:
                    skipped[("retnet", t)] = why
                    log("retnet: skipping %s: %s" % (t, why))
                for r in rows or []:
                    results.setdefault(("retnet", t, r["test"], r["depth"]), []).append(r["samples"])
                    meta["retnet"].setdefault(t, r)
            if t in ggufs and ("llama.cpp", t) not in skipped:
                rows, why = run_llama(a, tools, ggufs[t])
                if rows is None:
                    skipped[("llama.cpp", t)] = why
                    log("llama.cpp: skipping %s: %s" % (t, why))
                for r in rows or []:
                    results.setdefault(("llama.cpp", t, r["test"], r["depth"]), []).append(r["samples"])
                    meta["llama.cpp"].setdefault(t, r)
        log("round %d of %d done" % (rnd + 1, a.rounds))

    tests = ([("tg%d" % a.n_gen, d) for d in a.depths] if a.n_gen > 0 else []) + \
        ([("pp%d" % a.n_prompt, 0)] if a.n_prompt > 0 else [])
    table = []
    for t in a.type_list:
        for test, depth in tests:
            e = results.get(("retnet", t, test, depth))
            l = results.get(("llama.cpp", t, test, depth))
            em = stats(e) if e else None
            lm = stats(l) if l else None
            table.append({"type": t, "llama_type": (meta["llama.cpp"].get(t) or {}).get("type") or LLAMA_TYPES.get(t) or ("BF16" if t == "bf16" else "-"),
                          "test": test, "depth": depth, "retnet_avg_ts": em[0] if em else None,
                          "retnet_stddev_ts": em[1] if em else None, "llama_avg_ts": lm[0] if lm else None,
                          "llama_stddev_ts": lm[1] if lm else None,
                          "ratio": em[0] / lm[0] if em and lm else None})

    lines = []
    lines.append("shape %s: retnet D %d, L %d, H %d, vocab %d (%.1f M params) vs Llama D %d, L %d, %d heads of %d, "
                 "FFN %d, vocab %d (%.1f M params); %d threads, %d reps x %d rounds"
                 % (a.shape, dims["D"], dims["L"], dims["retnet_heads"], dims["V"], params_retnet(a.shape) / 1e6,
                    dims["D"], dims["L"], dims["n_head"], dims["head_dim"], dims["F"], dims["V"],
                    params_llama(dims) / 1e6, a.threads, a.repetitions, a.rounds))
    lines.append("machine: %s, %s logical CPUs (%s), load average at start %s"
                 % (mi["cpu"], mi["logical_cpus"], " ".join(mi["features"]), mi["loadavg_at_start"]))
    lc = next(iter(meta["llama.cpp"].values()), {})
    rc = next(iter(meta["retnet"].values()), {})
    lines.append("llama.cpp: llama-cpp-python %s sdist (build %s), flash_attn %s, llama-bench args '%s', "
                 "llama-quantize args '%s'; retnet %s %s"
                 % (a.llama_cpp_python, lc.get("build_commit"), lc.get("flash_attn"), a.llama_args, a.quantize_args,
                    rc.get("build_commit"), a.retnet_args))
    lines.append("")
    lines.append("| type (llama.cpp) | test | depth | retnet t/s | llama.cpp t/s | retnet/llama.cpp |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in table:
        lines.append("| %s (%s) | %s | %d | %s | %s | %s |" % (
            r["type"], r["llama_type"], r["test"], r["depth"],
            fmt(r["retnet_avg_ts"], r["retnet_stddev_ts"]) if r["retnet_avg_ts"] is not None else "-",
            fmt(r["llama_avg_ts"], r["llama_stddev_ts"]) if r["llama_avg_ts"] is not None else "-",
            "%.2fx" % r["ratio"] if r["ratio"] is not None else "-"))
    lines.append("")
    for (eng, t), why in sorted(skipped.items()):
        lines.append("skipped: %s %s: %s" % (eng, t, why))
    # The load average lags by a minute, so noise is judged from the samples themselves. Measured on the
    # 2-core VM: when other jobs started mid-run, llama-bench's spin-waiting threads lost up to 50x (tg32
    # 114 -> 2 t/s) while retnet lost 3x, so a ratio from a busy machine means little.
    noisy = ["%s %s %s@%d" % (eng, t, test, depth) for (eng, t, test, depth), v in sorted(results.items())
             if len(sum(v, [])) > 1 and statistics.stdev(sum(v, [])) > 0.15 * statistics.fmean(sum(v, []))]
    if noisy:
        try:
            load_end = "%.1f" % os.getloadavg()[0]
        except OSError:
            load_end = "?"
        lines.append("note: samples vary by more than 15%% (%s; load average %s at the end): the machine was busy, "
                     "rerun on an idle one to compare" % (", ".join(noisy), load_end))
    lines.append("wall time %.0f s" % (time.perf_counter() - t_start))
    print("\n".join(lines))
    if a.json:
        out = {"args": {k: v for k, v in vars(a).items()}, "machine": mi, "llama_dims": dims,
               "params": {"retnet": params_retnet(a.shape), "llama": params_llama(dims)},
               "table": table, "skipped": {"%s %s" % k: v for k, v in skipped.items()},
               "samples": {"%s|%s|%s|%d" % k: v for k, v in results.items()}, "markdown": "\n".join(lines)}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        log("wrote " + a.json)


if __name__ == "__main__":
    main()

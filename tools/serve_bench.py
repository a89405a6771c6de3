#!/usr/bin/env python3
"""Load generator for `retnet serve` (standard library only): aggregate decode speed at several
numbers of concurrent streams, time to first token for a cold and for a cached long prompt, and the
same model's `retnet bench` figures measured in the same run, so that every figure comes with its ratio.

  # a server it starts itself (on a free loopback port), on a checkpoint or on a random-weight shape:
  python3 tools/serve_bench.py --model models/kjv-retnet --threads 2
  python3 tools/serve_bench.py --shape 125m --threads 2
  # or a server that is already running (no bench comparison then, unless --model names its directory):
  python3 tools/serve_bench.py --url http://127.0.0.1:8080 --streams 1,4,8,16 --tokens 128

Decode: each stream is one greedy request with ignore_eos, so every stream generates exactly --tokens
tokens; aggregate tokens/s = streams x tokens / wall time of the round, the best of --rounds rounds
(prompts are a few tokens, so a round is decode-bound). `retnet bench -m DIR -p 0 -n TOKENS -b 1,8` runs before and after the server
rounds (the server stopped meanwhile, so they never share the cores) and the better of the two is the
reference: 8 streams are compared with batch 8, one stream with batch 1 (its shortfall is the server's
overhead per token: HTTP, JSON, detokenizing, the scheduler's hand-offs).

Time to first token: streamed completions of a prompt of --ttft-tokens tokens (counted with the
server's /tokenize), "cold" ones made unique by a leading number so that no cached prefix applies,
"cached" ones repeating a prompt the server has seen (its whole state comes from the prefix cache).

--shape writes a random-weight checkpoint of the paper's shapes (as `retnet bench --shape`: dk 256,
value dim and FFN 2·D, vocabulary 32000) once under ~/.cache/retnet/serve-bench/, with the bundled
model's byte-level BPE tokenizer grown to the vocabulary by merges of its own tokens, so that every id
the random model picks decodes.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {"125m": (768, 12, 3), "350m": (1024, 24, 4), "1.3b": (2048, 24, 8)}  # D, layers, heads


# ---------------------------------------------------------------- random-weight checkpoint
def write_random_model(out, shape, vocab=32000, seed=1234):
    """A torchscale/syncdoth-layout checkpoint of `shape` with bf16 weights of magnitude ~0.01."""
    D, L, H = SHAPES[shape]
    VD, F = 2 * D, 2 * D
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    bundled = os.path.join(ROOT, "models", "kjv-retnet")
    cfg = json.load(open(os.path.join(bundled, "config.json")))
    cfg.update({"vocab_size": vocab, "decoder_embed_dim": D, "decoder_value_embed_dim": VD,
                "decoder_ffn_embed_dim": F, "decoder_layers": L, "decoder_retention_heads": H})
    json.dump(cfg, open(os.path.join(tmp, "config.json"), "w"), indent=2)
    shutil.copy(os.path.join(bundled, "tokenizer_config.json"), tmp)
    grow_tokenizer(os.path.join(bundled, "tokenizer.json"), os.path.join(tmp, "tokenizer.json"), vocab)

    tensors = [("lm_head.weight", [vocab, D]), ("model.embed_tokens.weight", [vocab, D]),
               ("model.layer_norm.weight", [D]), ("model.layernorm_embedding.weight", [D])]
    for i in range(L):
        p = f"model.layers.{i}."
        tensors += [(p + "ffn.fc1.weight", [F, D]), (p + "ffn.fc2.weight", [D, F]), (p + "ffn.gate.weight", [F, D]),
                    (p + "final_layer_norm.weight", [D]), (p + "retention.g_proj.weight", [VD, D]),
                    (p + "retention.k_proj.weight", [D, D]), (p + "retention.out_proj.weight", [D, VD]),
                    (p + "retention.q_proj.weight", [D, D]), (p + "retention.v_proj.weight", [VD, D]),
                    (p + "retention_layer_norm.weight", [D])]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shp in tensors:
        n = 2 * (shp[0] * (shp[1] if len(shp) > 1 else 1))
        header[name] = {"dtype": "BF16", "shape": shp, "data_offsets": [offset, offset + n]}
        offset += n
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    # bf16 from random bytes: the high byte keeps its sign bit and gets exponent 0x78/0x79 (2^-7, 2^-6),
    # the low byte is the last exponent bit and the mantissa: uniform-ish values of magnitude 0.004-0.03.
    high = bytes((b & 0x80) | 0x3C for b in range(256))
    with open(os.path.join(tmp, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name, shp in tensors:
            if len(shp) == 1:
                f.write(b"\x80\x3f" * shp[0])  # 1.0: norm weights
                continue
            left = shp[0] * shp[1] * 2
            while left:
                buf = bytearray(os.urandom(min(left, 1 << 24)))
                buf[1::2] = buf[1::2].translate(high)
                f.write(buf)
                left -= len(buf)
    os.replace(tmp, out)


def grow_tokenizer(src, dst, vocab):
    """Adds BPE merges of existing tokens (pairs in a fixed order) until the vocabulary has `vocab` ids."""
    t = json.load(open(src))
    v, merges = t["model"]["vocab"], t["model"]["merges"]
    base = sorted(v, key=v.get)[1:257]  # skip the special token: the byte symbols and the first merges
    for a in base:
        for b in base:
            if len(v) >= vocab:
                break
            if a + b not in v:
                v[a + b] = len(v)
                merges.append([a, b])
    json.dump(t, open(dst, "w"), ensure_ascii=False)


# ---------------------------------------------------------------- HTTP
def send(url, key, method, path, body=None, barrier=None):
    """(connection, response) of one JSON request; the caller reads the response and closes. With a
    barrier, the connection is opened first and the request sent when every party has its own open."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    if barrier:
        conn.connect()
        barrier.wait()
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    return conn, conn.getresponse()


def request(url, key, method, path, body=None):
    conn, r = send(url, key, method, path, body)
    data = r.read()
    conn.close()
    if r.status != 200:
        raise SystemExit(f"{path}: HTTP {r.status}: {data[:300]!r}")
    return json.loads(data)


def post(url, key, body, stream=False, barrier=None):
    t0 = time.perf_counter()
    conn, r = send(url, key, "POST", "/v1/completions", body, barrier)
    if r.status != 200:
        raise SystemExit(f"HTTP {r.status}: {r.read()[:300]!r}")
    if not stream:
        data = json.loads(r.read())
        conn.close()
        return data["usage"]["completion_tokens"], None
    first = None
    while True:
        line = r.fp.readline()
        if not line:
            break
        # The first chunk that carries text (the reply's first token; a token with no whole UTF-8
        # character yet sends nothing, so the model's first printable token is what is timed).
        if line.startswith(b"data: ") and b'"text":"' in line and b'"text":""' not in line and first is None:
            first = time.perf_counter() - t0
        if line.strip() == b"data: [DONE]":
            break
    conn.close()
    return 0, first


def decode_round(args, n):
    """Aggregate tokens/s of n greedy requests sent at once: each thread opens its connection, and all
    send their requests together when the last is connected (the clock starts then), so that the
    server sees n arrivals at one moment, as it would from n busy clients, rather than a ramp of
    thread start-ups that a short round on a small model would mostly measure."""
    done, t0 = [], []
    barrier = threading.Barrier(n, action=lambda: t0.append(time.perf_counter()))

    def one(i):
        body = {"prompt": args.prompt, "max_tokens": args.tokens, "temperature": 0, "ignore_eos": True}
        done.append(post(args.url, args.api_key, body, barrier=barrier)[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if sum(done) != n * args.tokens:
        raise SystemExit(f"{n} streams generated {sum(done)} tokens, expected {n * args.tokens}")
    return sum(done) / (time.perf_counter() - t0[0])


def long_prompt(args, tag):
    """A prompt of about --ttft-tokens tokens (the server's own count), starting with `tag`."""
    verse = "And it came to pass in those days, that there went out a decree from Caesar Augustus. "
    per = len(request(args.url, args.api_key, "POST", "/tokenize", {"content": verse})["tokens"])
    text = tag + verse * max(1, args.ttft_tokens // max(1, per))
    return text, len(request(args.url, args.api_key, "POST", "/tokenize", {"content": text})["tokens"])


def ttft(args, cached):
    times, n_tok = [], 0
    for r in range(args.repeats):
        prompt, n_tok = long_prompt(args, "" if cached else f"{r} {time.time()} ")
        if cached and r == 0:
            post(args.url, args.api_key, {"prompt": prompt, "max_tokens": 1, "temperature": 0})  # fill the cache
        body = {"prompt": prompt, "max_tokens": 4, "temperature": 0, "stream": True, "ignore_eos": True}
        times.append(post(args.url, args.api_key, body, stream=True)[1] * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))], n_tok


# ---------------------------------------------------------------- processes
class Server:
    def __init__(self, args):
        cmd = [args.cli, "serve", "-m", args.model, "--port", "0", "--parallel", str(args.parallel),
               "-t", str(args.threads), "--max-tokens", str(max(4096, args.tokens)), "--quiet"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.port, lines = None, []
        for line in self.proc.stderr:
            lines.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise SystemExit("retnet serve did not start:\n" + "".join(lines))
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def bench(args):
    out = subprocess.run([args.cli, "bench", "-m", args.model, "-p", "0", "-n", str(args.tokens), "-b", "1,8",
                          "-r", "2", "-t", str(args.threads), "-o", "jsonl"],
                         check=True, capture_output=True, text=True).stdout
    return {r["n_batch"]: r["avg_ts"] for r in map(json.loads, out.splitlines())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (default: start one on --model or --shape)")
    ap.add_argument("--model", help="model directory (served, and benched with `retnet bench -m`)")
    ap.add_argument("--shape", choices=sorted(SHAPES), help="a random-weight checkpoint of this shape")
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "retnet"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=16, help="server slots")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--streams", default="1,4,8,16")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2, help="decode rounds per stream count (the best is shown)")
    ap.add_argument("--prompt", default="In the beginning")
    ap.add_argument("--ttft-tokens", type=int, default=1000, help="length of the time-to-first-token prompt")
    ap.add_argument("--repeats", type=int, default=10, help="requests per time-to-first-token figure")
    args = ap.parse_args()
    if args.shape:
        cache = os.path.join(os.path.expanduser("~"), ".cache", "retnet", "serve-bench", args.shape)
        if not os.path.isdir(cache):
            print(f"writing a random {args.shape} checkpoint to {cache}", file=sys.stderr)
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            write_random_model(cache, args.shape)
        args.model = cache
    if not args.url and not args.model:
        ap.error("give --url, --model or --shape")

    ref = [bench(args)] if args.model else []
    server = None
    if not args.url:
        server = Server(args)
        args.url = f"http://127.0.0.1:{server.port}"
    try:
        decode_round(args, 1)  # warm-up
        # The best of --rounds rounds per stream count, as the bench reference is the better of two runs
        # (this VM's speed moves by 10-15% within minutes; the best is the least disturbed).
        agg = {n: max(decode_round(args, n) for _ in range(args.rounds))
               for n in [int(x) for x in args.streams.split(",")]}
        tt = {label: ttft(args, cached) for label, cached in (("cold", False), ("cached", True))}
    finally:
        if server:
            server.stop()
    if args.model:
        ref.append(bench(args))
    best = {b: max(r[b] for r in ref) for b in (1, 8)} if ref else {}

    print(f"model {args.model or args.url}, {args.threads} threads, --parallel {args.parallel}, "
          f"{args.tokens} tokens per stream, greedy, best of {args.rounds} rounds")
    print("| streams | aggregate tokens/s | vs 1 stream | vs `retnet bench` same batch |")
    print("|---:|---:|---:|---:|")
    for n, v in agg.items():
        vs_bench = f"{v / best[n]:.2f}× (bench {best[n]:.1f})" if n in best else ""
        vs_one = f"{v / agg[1]:.2f}×" if 1 in agg else ""
        print(f"| {n} | {v:.1f} | {vs_one} | {vs_bench} |")
    if 1 in agg and 1 in best:
        print(f"server overhead per token at one stream: {100 * (1 - agg[1] / best[1]):.1f}% "
              f"(bench tg{args.tokens} {best[1]:.1f} t/s; bench runs: {[round(r[1], 1) for r in ref]})")
    for label, (p50, p95, n) in tt.items():
        print(f"time to first token, {label} {n}-token prompt: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"cached / cold p50: {100 * tt['cached'][0] / tt['cold'][0]:.1f}%")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load generator for `retnet serve` (standard library only): aggregate decode speed at several
numbers of concurrent streams, and time to first token for a cold and for a cached long prompt.

  ./build/retnet serve -m MODEL_DIR --port 8080 --parallel 16 &
  python3 tools/serve_bench.py --url http://127.0.0.1:8080 --streams 1,4,8,16 --tokens 128

Each stream is one greedy request with ignore_eos, so every stream generates exactly --tokens tokens.
Aggregate tokens/s = streams x tokens / wall time of the whole round (prompts are a few tokens, so the
round is decode-bound). Time to first token is measured on streamed chat-less completions: "cold"
prompts start with a fresh number so that no cached prefix applies; "cached" repeats one prompt.
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def post(url, key, body, stream=False):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body=json.dumps(body), headers=headers)
    r = conn.getresponse()
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
        if line.startswith(b"data: ") and b'"text":"' in line and b'"text":""' not in line and first is None:
            first = time.perf_counter() - t0
        if line.strip() == b"data: [DONE]":
            break
    conn.close()
    return 0, first


def decode_round(args, n):
    done = []

    def one(i):
        body = {"prompt": args.prompt, "max_tokens": args.tokens, "temperature": 0, "ignore_eos": True}
        done.append(post(args.url, args.api_key, body)[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def ttft(args, cached):
    base = ("And it came to pass in those days, that there went out a decree from Caesar Augustus. " * 200)
    times = []
    for r in range(args.repeats):
        prompt = base if cached else f"{r} {time.time()} " + base
        if cached and r == 0:
            post(args.url, args.api_key, {"prompt": prompt, "max_tokens": 1, "temperature": 0})  # fill the cache
        body = {"prompt": prompt, "max_tokens": 2, "temperature": 0, "stream": True}
        times.append(post(args.url, args.api_key, body, stream=True)[1] * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--streams", default="1,4,8,16")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prompt", default="In the beginning")
    ap.add_argument("--repeats", type=int, default=10, help="requests per time-to-first-token figure")
    args = ap.parse_args()
    decode_round(args, 1)  # warm-up
    print("| streams | aggregate tokens/s |")
    print("|---:|---:|")
    for n in [int(x) for x in args.streams.split(",")]:
        print(f"| {n} | {decode_round(args, n):.1f} |", flush=True)
    for label, cached in (("cold", False), ("cached", True)):
        p50, p95 = ttft(args, cached)
        print(f"time to first token, {label} long prompt: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)


if __name__ == "__main__":
    main()

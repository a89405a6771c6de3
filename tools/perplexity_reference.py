#!/usr/bin/env python3
"""Reference perplexity of a text file under a RetNet model directory saved by tools/train.py
(syncdoth/HF layout: config.json, model.safetensors, tokenizer.json, tokenizer_config.json),
computed with torchscale 0.3.0 in fp32 on CPU (bf16 weights are upcast to fp32).

Default protocol (whole file, one sequence):
  * the file is read as UTF-8 and tokenized as ONE string with tokenizer.json (no normalizer,
    byte-level BPE; nothing is stripped, the final newline included);
  * if tokenizer_config.json says add_bos_token, the BOS id is prepended: ids = [BOS] + ids;
    N = len(ids) is printed as `tokens: N`;
  * the sequence is run in a single pass (default --mode chunkwise: torchscale chunkwise_recurrent
    with the config's recurrent_chunk_size; `parallel` and `recurrent` (token by token) are the other
    torchscale forms, all equal up to fp32 rounding);
  * every token after the first is scored: NLL_i = -log softmax(logits_{i-1})[ids_i] for
    i = 1..N-1, and perplexity = exp(mean NLL) over those N-1 tokens (mean accumulated in float64).

--ctx N (independent windows):
  * the same id sequence (BOS prepended once, at the very start only) is cut into consecutive,
    non-overlapping windows of N tokens: ids[0:N], ids[N:2N], ...; the last window may be shorter;
  * each window is run on its own from an empty state (BOS is NOT re-inserted), and its tokens
    1..len-1 are scored from the window's own earlier tokens; the first token of every window is
    not scored (a window of length 1 contributes nothing);
  * perplexity = exp(total NLL / number of scored tokens).  `tokens:` is still the full sequence
    length N_total, and `scored:` gives the number of scored tokens (N_total - number of windows).

torchscale 0.3.0's parallel retention uses the older signed denominator clamp(|sum A|, min=1);
it is patched to torchscale HEAD's clamp(sum |A|, 1, 5e4) (as in tools/make_fixtures.py and
tools/train.py).  This only matters for --mode parallel and the --ctx windows (run in parallel).
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train as T  # noqa: E402  (installs the timm stand-in, imports torchscale, patches parallel)


@torch.no_grad()
def logits_full(model, ids, mode):
    x = torch.tensor([ids])
    if mode in ("parallel", "chunkwise"):
        model.chunkwise_recurrent = mode == "chunkwise"
        out = model(x)[0][0]
        model.chunkwise_recurrent = False
        return out
    assert mode == "recurrent"
    state, rows = {}, []
    for n in range(1, len(ids) + 1):
        rows.append(model(x[:, :n], incremental_state=state)[0][0, -1])
    return torch.stack(rows)


def nll_sum(logits, targets):
    lp = F.log_softmax(logits.double(), dim=-1)
    return float(-lp.gather(1, targets[:, None]).sum())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("text_file")
    p.add_argument("--ctx", type=int, default=0, metavar="N",
                   help="score independent, non-overlapping windows of N tokens (see above)")
    p.add_argument("--mode", choices=["chunkwise", "parallel", "recurrent"], default="chunkwise",
                   help="torchscale form for the whole-file pass (default chunkwise)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the result as JSON to this path")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    model_dir = Path(a.model_dir)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tcfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    model, cfg = T.load_model_dir(model_dir)
    text = Path(a.text_file).read_bytes().decode("utf-8")
    ids = tok.encode(text).ids
    if tcfg.get("add_bos_token", False):
        ids = [tok.token_to_id(tcfg["bos_token"])] + ids
    n = len(ids)
    t0 = time.time()
    if a.ctx:
        total, scored = 0.0, 0
        wins = [ids[i:i + a.ctx] for i in range(0, n, a.ctx)]
        full = [w for w in wins if len(w) == a.ctx]
        rest = [w for w in wins if len(w) < a.ctx]
        with torch.no_grad():
            for b in range(0, len(full), 8):
                x = torch.tensor(full[b:b + 8])
                lg = model(x)[0]
                total += nll_sum(lg[:, :-1].reshape(-1, lg.size(-1)), x[:, 1:].reshape(-1))
                scored += x[:, 1:].numel()
            for w in rest:
                if len(w) > 1:
                    x = torch.tensor([w])
                    lg = model(x)[0][0]
                    total += nll_sum(lg[:-1], x[0, 1:])
                    scored += len(w) - 1
        protocol = "ctx %d: non-overlapping windows of the BOS-prefixed id sequence, each scored alone " \
                   "from its own first token (tokens 1..len-1 of each window), parallel form" % a.ctx
    else:
        lg = logits_full(model, ids, a.mode)
        total = nll_sum(lg[:-1], torch.tensor(ids[1:]))
        scored = n - 1
        protocol = "whole file as one sequence, BOS prepended, tokens 1..N-1 scored, %s form%s" % (
            a.mode, " (chunk %d)" % cfg["recurrent_chunk_size"] if a.mode == "chunkwise" else "")
    ppl = math.exp(total / scored)
    print("perplexity: %.6f" % ppl)
    print("tokens: %d" % n)
    print("scored: %d" % scored)
    print("mean_nll: %.8f" % (total / scored))
    print("protocol: %s" % protocol)
    print("time: %.1fs" % (time.time() - t0))
    if a.json:
        Path(a.json).write_text(json.dumps({
            "file": Path(a.text_file).name, "perplexity": ppl, "tokens": n, "scored": scored,
            "mean_nll": total / scored, "ctx": a.ctx or None, "mode": None if a.ctx else a.mode,
            "protocol": protocol, "torch": torch.__version__}, indent=2) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Train the bundled default model, models/kjv-retnet: a small RetNet on the King James Bible.

    nice -n 10 /tmp/venv/bin/python tools/train.py                 # reproduce models/kjv-retnet
    /tmp/venv/bin/python tools/train.py --smoke                    # 30-second test into a temp dir
    /tmp/venv/bin/python tools/train.py --measure                  # tokens/s of candidate shapes
    /tmp/venv/bin/python tools/train.py --samples models/kjv-retnet  # re-print the model-card samples

The defaults reproduce the shipped model (384 steps of 16 x 256 tokens; about 48 minutes on a busy
2-core machine).  It was trained with `--budget-min 48 --calibrate 30 --deadline-min 60 --steps 2000`,
which timed the first 30 steps and chose --steps 384; since calibration ends inside the warmup, that run
is identical to passing --steps 384.

Everything is deterministic for a given machine and thread count: fixed seeds, a seeded data order,
torch.use_deterministic_algorithms(True), CPU, fp32.

Corpus: the Debian package bible-kjv (`bible Gen1:1-Rev22:21`), parsed into 1189 chapters / 31102
verses; verse references are dropped, one verse per line.  Every 40th chapter (chapter index
i % 40 == 39, 0-based over the whole Bible) is held out; the first held-out chapters that fit in
60 KB are written to validation.txt (chapters separated by one blank line).

Tokenizer: byte-level BPE (tokenizers), vocab 4096, `<|endoftext|>` = id 0 (BOS and EOS), trained on
the training chapters only.  Documents: chapter = `<|endoftext|>` + text; training sequences are
contiguous 256-token windows over the concatenated token stream.

Model: torchscale 0.3.0 RetNetDecoder (swish GLU, sqrt(D) embedding scale, embedding RMSNorm, eps 1e-6,
untied output projection).  torchscale 0.3.0's parallel retention uses the older signed denominator
clamp(|sum_m A|, min=1); it is replaced at run time by torchscale HEAD's clamp(sum_m |A|, 1, 5e4)
(the same patch as tools/make_fixtures.py), so training uses the form the engine implements.

Output (syncdoth/HF layout): config.json, model.safetensors (bf16 weights, fp32 rel-pos buffers),
tokenizer.json, tokenizer_config.json, generation_config.json, validation.txt, training_log.txt.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------
# torchscale import (timm stand-in from tools/torchscale_shim.py)
# --------------------------------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torchscale_shim import install_timm_stub  # noqa: E402

install_timm_stub()
from torchscale.architecture.config import RetNetConfig  # noqa: E402
from torchscale.architecture.retnet import RetNetDecoder  # noqa: E402
from torchscale.component.multiscale_retention import MultiScaleRetention  # noqa: E402


def _head_parallel_forward(self, qr, kr, v, mask):
    """torchscale HEAD (fdd8838) parallel retention core: denominator clamp(sum_m |A|, 1, 5e4)."""
    b, t, _ = v.size()
    vh = v.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
    a = (qr @ kr.transpose(-1, -2)) * mask
    a = a / a.detach().abs().sum(dim=-1, keepdim=True).clamp(min=1, max=5e4)
    return (a @ vh).transpose(1, 2)


MultiScaleRetention.parallel_forward = _head_parallel_forward

REPO = Path(__file__).resolve().parent.parent
EOT = "<|endoftext|>"
BIBLE_RANGE = "Gen1:1-Rev22:21"
N_CHAPTERS = 1189
N_VERSES = 31102


# --------------------------------------------------------------------------
# corpus
# --------------------------------------------------------------------------

_HEADER = re.compile(r"^((?:[123] )?[A-Z][A-Za-z ]*[a-z]) (\d+)$")
_VERSE = re.compile(r"^ +(\d+) (.*)$")


def read_bible():
    """Return a list of chapters: dict(book, chapter, verses=[str])."""
    raw = subprocess.run(["bible", BIBLE_RANGE], check=True, capture_output=True).stdout
    lines = raw.decode("ascii").split("\n")
    chapters, cur, verse = [], None, None
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        m = _HEADER.match(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        nxt2 = lines[i + 2] if i + 2 < len(lines) else ""
        if m and nxt.strip() == "" and _VERSE.match(nxt2) and _VERSE.match(nxt2).group(1) == "1":
            cur = {"book": m.group(1), "chapter": int(m.group(2)), "verses": []}
            chapters.append(cur)
            i += 2
            continue
        i += 1
        if not line.strip():
            continue
        mv = _VERSE.match(line)
        if mv:
            n = int(mv.group(1))
            assert cur is not None and n == len(cur["verses"]) + 1, ("verse numbering", line)
            cur["verses"].append(mv.group(2).strip())
        else:  # continuation of a wrapped verse
            assert cur is not None and cur["verses"], ("stray line", line)
            cur["verses"][-1] += " " + line.strip()
    assert len(chapters) == N_CHAPTERS, len(chapters)
    assert sum(len(c["verses"]) for c in chapters) == N_VERSES
    for c in chapters:
        c["verses"] = [re.sub(r"\s+", " ", v) for v in c["verses"]]
        c["text"] = "\n".join(c["verses"]) + "\n"
    return chapters


def split_chapters(chapters, every=40, val_bytes=60000):
    """Held out: chapter index i % every == every-1.  validation.txt = the first held-out chapters
    whose joined size (chapters separated by a blank line) stays <= val_bytes."""
    train = [c for i, c in enumerate(chapters) if i % every != every - 1]
    held = [c for i, c in enumerate(chapters) if i % every == every - 1]
    val_file, size = [], 0
    for c in held:
        add = len(c["text"]) + (1 if val_file else 0)
        if size + add > val_bytes:
            break
        val_file.append(c)
        size += add
    return train, held, val_file


def validation_text(chapters):
    return "\n".join(c["text"] for c in chapters)  # each text ends in "\n": one blank line between


# --------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------

def train_tokenizer(texts, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    assert tok.token_to_id(EOT) == 0
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    return tok


TOKENIZER_CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": EOT,
    "eos_token": EOT,
    "unk_token": EOT,
    "model_max_length": 1000000000,
    "clean_up_tokenization_spaces": False,
    "tokenizer_class": "PreTrainedTokenizerFast",
}


def encode_docs(tok, chapters):
    """Concatenated token stream: for each chapter, id 0 then the chapter's tokens."""
    enc = tok.encode_batch([c["text"] for c in chapters])
    out = []
    for e in enc:
        out.append(0)
        out.extend(e.ids)
    return np.asarray(out, dtype=np.int64)


# --------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------

def make_config(a, vocab):
    return RetNetConfig(
        vocab_size=vocab,
        decoder_embed_dim=a.dim,
        decoder_value_embed_dim=a.value_dim or 2 * a.dim,
        decoder_ffn_embed_dim=a.ffn,
        decoder_layers=a.layers,
        decoder_retention_heads=a.heads,
        activation_fn="swish",
        no_scale_embedding=False,
        layernorm_embedding=True,
        layernorm_eps=1e-6,
        decoder_normalize_before=True,
        deepnorm=False,
        share_decoder_input_output_embed=a.tied,
        dropout=a.dropout,
        activation_dropout=0.0,
        drop_path_rate=0.0,
        recurrent_chunk_size=a.chunk,
        chunkwise_recurrent=False,
    )


def build_model(cfg):
    emb = nn.Embedding(cfg.vocab_size, cfg.decoder_embed_dim)
    nn.init.normal_(emb.weight, mean=0.0, std=cfg.decoder_embed_dim ** -0.5)
    return RetNetDecoder(cfg, embed_tokens=emb)


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def hf_state_dict(model, tied):
    """torchscale names -> syncdoth names; weights bf16, rel-pos buffers fp32."""
    out = {}
    for k, v in model.state_dict().items():
        if k == "output_projection.weight":
            if tied:
                continue
            name = "lm_head.weight"
        else:
            name = "model." + k
        v = v.detach().cpu().contiguous()
        v = v.float() if k.startswith("retnet_rel_pos.") else v.to(torch.bfloat16)
        out[name] = v.clone()
    return out


def hf_config(cfg, tied):
    return {
        "architectures": ["RetNetForCausalLM"],
        "model_type": "retnet",
        "vocab_size": cfg.vocab_size,
        "decoder_embed_dim": cfg.decoder_embed_dim,
        "decoder_value_embed_dim": cfg.decoder_value_embed_dim,
        "decoder_ffn_embed_dim": cfg.decoder_ffn_embed_dim,
        "decoder_layers": cfg.decoder_layers,
        "decoder_retention_heads": cfg.decoder_retention_heads,
        "activation_fn": cfg.activation_fn,
        "no_scale_embedding": cfg.no_scale_embedding,
        "layernorm_embedding": cfg.layernorm_embedding,
        "layernorm_eps": cfg.layernorm_eps,
        "decoder_normalize_before": True,
        "deepnorm": False,
        "subln": True,
        "use_glu": True,
        "use_lm_decay": False,
        "recurrent_chunk_size": cfg.recurrent_chunk_size,
        "forward_impl": "parallel",
        "tie_word_embeddings": tied,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
        "torch_dtype": "bfloat16",
    }


GENERATION_CONFIG = {
    "bos_token_id": 0,
    "eos_token_id": 0,
    "do_sample": True,
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.95,
    "max_new_tokens": 128,
}


def load_model_dir(model_dir):
    """Build a torchscale RetNetDecoder (fp32) from a directory saved by this script."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    c = json.loads((model_dir / "config.json").read_text())
    tied = bool(c.get("tie_word_embeddings", False))
    cfg = RetNetConfig(
        vocab_size=c["vocab_size"],
        decoder_embed_dim=c["decoder_embed_dim"],
        decoder_value_embed_dim=c["decoder_value_embed_dim"],
        decoder_ffn_embed_dim=c["decoder_ffn_embed_dim"],
        decoder_layers=c["decoder_layers"],
        decoder_retention_heads=c["decoder_retention_heads"],
        activation_fn=c["activation_fn"],
        no_scale_embedding=c["no_scale_embedding"],
        layernorm_embedding=c["layernorm_embedding"],
        layernorm_eps=c["layernorm_eps"],
        decoder_normalize_before=True,
        deepnorm=False,
        share_decoder_input_output_embed=tied,
        recurrent_chunk_size=c["recurrent_chunk_size"],
        chunkwise_recurrent=False,
    )
    model = build_model(cfg)
    sd = load_file(str(model_dir / "model.safetensors"))
    ts = {}
    for k, v in sd.items():
        if k == "lm_head.weight":
            ts["output_projection.weight"] = v.float()
        else:
            assert k.startswith("model."), k
            ts[k[len("model."):]] = v.float()
    if tied:
        ts["output_projection.weight"] = ts["embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(ts, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model.eval()
    return model, c


@torch.no_grad()
def generate(model, tok, prompt, max_new=80, temperature=0.8, top_k=40, seed=0, stop_id=0):
    """Sampled continuation through torchscale's recurrent mode (token by token, BOS first)."""
    g = torch.Generator().manual_seed(seed)
    ids = [0] + tok.encode(prompt).ids
    state = {}
    logits = None
    for n in range(1, len(ids) + 1):  # feed the prompt one token at a time
        logits = model(torch.tensor([ids[:n]]), incremental_state=state)[0][0, -1]
    out = []
    for _ in range(max_new):
        z = logits.float() / temperature
        if top_k:
            kth = torch.topk(z, top_k).values[-1]
            z = z.masked_fill(z < kth, float("-inf"))
        nxt = int(torch.multinomial(torch.softmax(z, -1), 1, generator=g))
        if nxt == stop_id:
            break
        out.append(nxt)
        ids.append(nxt)
        logits = model(torch.tensor([ids]), incremental_state=state)[0][0, -1]
    return prompt + tok.decode(out)


SAMPLE_PROMPTS = ["In the beginning", "And the LORD said unto Moses", "Blessed are"]


def print_samples(model_dir, max_new=80, seed=1234, log=print):
    from tokenizers import Tokenizer

    model, _ = load_model_dir(model_dir)
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    for i, p in enumerate(SAMPLE_PROMPTS):
        s = generate(model, tok, p, max_new=max_new, temperature=0.8, top_k=40, seed=seed + i)
        log("sample (seed %d, temperature 0.8, top-k 40): %r" % (seed + i, s))


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------

class Logger:
    def __init__(self, path):
        self.f = open(path, "w") if path else None
        self.t0 = time.time()

    def __call__(self, msg):
        line = "[%7.1fs] %s" % (time.time() - self.t0, msg)
        print(line, flush=True)
        if self.f:
            self.f.write(line + "\n")
            self.f.flush()


def batches(stream, seq, batch, seed):
    """Endless deterministic batches of contiguous (seq+1)-token windows.  Each epoch uses a seeded
    start offset in [0, seq) and a seeded permutation of the windows."""
    epoch = 0
    while True:
        rng = np.random.default_rng([seed, epoch])
        off = int(rng.integers(0, seq))
        n = (len(stream) - 1 - off) // seq
        starts = off + seq * rng.permutation(n)
        for j in range(0, n - batch + 1, batch):
            idx = starts[j:j + batch, None] + np.arange(seq + 1)[None, :]
            yield epoch, torch.from_numpy(stream[idx])
        epoch += 1


def val_windows(stream, seq):
    n = (len(stream) - 1) // seq
    idx = np.arange(n)[:, None] * seq + np.arange(seq + 1)[None, :]
    return torch.from_numpy(stream[idx])


@torch.no_grad()
def evaluate(model, windows, bs=16):
    model.eval()
    tot, cnt = 0.0, 0
    for i in range(0, len(windows), bs):
        w = windows[i:i + bs]
        logits = model(w[:, :-1])[0]
        tot += F.cross_entropy(logits.reshape(-1, logits.size(-1)), w[:, 1:].reshape(-1),
                               reduction="sum").item()
        cnt += w[:, 1:].numel()
    model.train()
    return tot / cnt


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * min(1.0, p)))


def make_optimizer(model, a):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embed_tokens" not in n else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=a.lr, betas=(0.9, 0.95), eps=1e-8)


def setup_torch(a):
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)


def measure(a):
    """Tokens/s of a few candidate shapes (random tokens; a few steps each)."""
    setup_torch(a)
    shapes = [  # D, L, H, F
        (256, 4, 4, 640),
        (256, 5, 4, 640),
        (320, 4, 4, 768),
    ]
    for d, l, h, f in shapes:
        aa = argparse.Namespace(**vars(a))
        aa.dim, aa.layers, aa.heads, aa.ffn, aa.value_dim = d, l, h, f, 2 * d
        model = build_model(make_config(aa, 4096))
        opt = make_optimizer(model, aa)
        x = torch.randint(0, 4096, (a.batch, a.seq + 1))
        times = []
        for s in range(4):
            t = time.time()
            logits = model(x[:, :-1])[0]
            loss = F.cross_entropy(logits.reshape(-1, 4096), x[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            times.append(time.time() - t)
        dt = float(np.median(times[1:]))
        print("D %d L %d H %d F %d Vd %d: %.2fM params, %.2f s/step, %.0f tok/s"
              % (d, l, h, f, 2 * d, count_params(model) / 1e6, dt, a.batch * a.seq / dt), flush=True)


def train(a):
    from safetensors.torch import save_file

    setup_torch(a)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Logger(out / "training_log.txt")
    log("command: %s" % " ".join([Path(sys.executable).name] + sys.argv))
    log("torch %s, threads %d, seed %d" % (torch.__version__, torch.get_num_threads(), a.seed))

    chapters = read_bible()
    train_ch, held_ch, val_ch = split_chapters(chapters)
    if a.smoke:
        train_ch = train_ch[:150]
    vtext = validation_text(val_ch)
    (out / "validation.txt").write_text(vtext)
    log("corpus: %d chapters, %d verses; train %d chapters, held out %d (every 40th), "
        "validation.txt %d chapters / %d bytes (%s ... %s)"
        % (len(chapters), sum(len(c["verses"]) for c in chapters), len(train_ch), len(held_ch),
           len(val_ch), len(vtext.encode()), "%s %d" % (val_ch[0]["book"], val_ch[0]["chapter"]),
           "%s %d" % (val_ch[-1]["book"], val_ch[-1]["chapter"])))

    t = time.time()
    tok = train_tokenizer([c["text"] for c in train_ch], a.vocab)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")
    train_stream = encode_docs(tok, train_ch)
    held_stream = encode_docs(tok, held_ch)
    log("tokenizer: byte-level BPE, vocab %d, trained in %.1fs; train stream %d tokens "
        "(%.2f bytes/token), held-out stream %d tokens"
        % (tok.get_vocab_size(), time.time() - t, len(train_stream),
           sum(len(c["text"]) for c in train_ch) / (len(train_stream) - len(train_ch)), len(held_stream)))
    vwin = val_windows(held_stream, a.seq)
    if a.smoke:
        vwin = vwin[:64]

    cfg = make_config(a, tok.get_vocab_size())
    model = build_model(cfg)
    model.train()
    nparam = count_params(model)
    log("model: D %d, L %d, H %d (dk %d, dv %d), Vd %d, F %d, vocab %d, %s output; %d params (%.2fM)"
        % (cfg.decoder_embed_dim, cfg.decoder_layers, cfg.decoder_retention_heads,
           cfg.decoder_embed_dim // cfg.decoder_retention_heads,
           cfg.decoder_value_embed_dim // cfg.decoder_retention_heads, cfg.decoder_value_embed_dim,
           cfg.decoder_ffn_embed_dim, cfg.vocab_size, "tied" if a.tied else "untied", nparam, nparam / 1e6))
    tokens_total = a.steps * a.batch * a.seq
    log("training: %d steps x %d x %d = %d tokens (%.2f epochs); AdamW lr %g -> %g cosine, warmup %d, "
        "wd %g, clip %g, dropout %g"
        % (a.steps, a.batch, a.seq, tokens_total, tokens_total / len(train_stream), a.lr, a.min_lr,
           a.warmup, a.weight_decay, a.clip, a.dropout))

    opt = make_optimizer(model, a)
    data = batches(train_stream, a.seq, a.batch, a.seed)
    eval_at = set(int(round(a.steps * f)) for f in (0.25, 0.5, 0.75))
    t0 = time.time()
    step_times = []
    run_loss, run_n = 0.0, 0
    step = 0
    while step < a.steps:
        ts = time.time()
        epoch, xb = next(data)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        logits = model(xb[:, :-1])[0]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), xb[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        run_loss += loss.item()
        run_n += 1
        if (step + 1) % a.log_every == 0 or step == 0 or step + 1 == a.steps:
            el = time.time() - t0
            log("step %5d/%d epoch %d  train loss %.4f  lr %.2e  gnorm %.2f  %.0f tok/s  elapsed %.1f min"
                % (step + 1, a.steps, epoch, run_loss / run_n, lr_at(step, a), float(gn),
                   (step + 1) * a.batch * a.seq / el, el / 60))
            run_loss, run_n = 0.0, 0
        step_times.append(time.time() - ts)
        if a.budget_min and step + 1 == a.calibrate:
            # Plan the step count once, early (before the end of warmup, so the LR schedule so far
            # does not depend on it).  The run is reproduced exactly by passing --steps N.
            sps = float(np.median(step_times[len(step_times) // 4:]))
            planned = int(min(a.steps, max(a.calibrate + a.warmup, (a.budget_min * 60 - (time.time() - t0)) / sps + step + 1)))
            a.steps = planned
            eval_at = set(int(round(a.steps * f)) for f in (0.25, 0.5, 0.75))
            log("calibration: %.2f s/step over the first %d steps -> %d steps for a %.0f-minute budget "
                "(reproduce this run with --steps %d and no --budget-min)"
                % (sps, a.calibrate, a.steps, a.budget_min, a.steps))
        if (step + 1) in eval_at:
            log("step %5d  validation loss %.4f" % (step + 1, evaluate(model, vwin)))
        step += 1
        if a.deadline_min and time.time() - t0 > a.deadline_min * 60 and step < a.steps:
            log("DEADLINE: stopped after step %d of %d (%.1f min); reproduce with --steps %d --stop-at %d"
                % (step, a.steps, (time.time() - t0) / 60, a.steps, step))
            break
        if a.stop_at and step >= a.stop_at:
            log("stopped at step %d of %d (--stop-at)" % (step, a.steps))
            break
    train_time = time.time() - t0
    # final train loss over the last stretch (running mean over the last log window)
    final_val = evaluate(model, vwin)
    log("final: validation loss %.4f (ppl %.2f) over %d held-out windows of %d; train time %.1f min"
        % (final_val, math.exp(final_val), len(vwin), a.seq, train_time / 60))

    model.eval()
    save_file(hf_state_dict(model, a.tied), str(out / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(out / "model.safetensors", 0o644)  # safetensors creates the file 0600
    (out / "config.json").write_text(json.dumps(hf_config(cfg, a.tied), indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2) + "\n")
    log("saved %s (model.safetensors %.2f MB)"
        % (out, (out / "model.safetensors").stat().st_size / 1e6))

    # reload the saved bf16 weights and check them, then sample
    rmodel, _ = load_model_dir(out)
    bf16_val = evaluate(rmodel, vwin)
    log("reloaded bf16 weights: validation loss %.4f (ppl %.2f)" % (bf16_val, math.exp(bf16_val)))
    print_samples(out, max_new=a.sample_tokens, log=log)
    log("total wall time %.1f min" % ((time.time() - log.t0) / 60))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "models" / "kjv-retnet"))
    p.add_argument("--smoke", action="store_true", help="30-second run with a tiny model into a temp dir")
    p.add_argument("--measure", action="store_true", help="print tokens/s for candidate shapes and exit")
    p.add_argument("--samples", metavar="MODEL_DIR", help="print the model-card samples of a saved model")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=512)
    p.add_argument("--value-dim", type=int, default=0, help="default 2*dim")
    p.add_argument("--tied", action="store_true", help="tie the output projection to the embedding")
    p.add_argument("--chunk", type=int, default=64, help="recurrent_chunk_size written to config.json")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=384)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr", type=float, default=2e-4)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--budget-min", type=float, default=0,
                   help="time the first --calibrate steps, then lower --steps so the training loop fits "
                        "in this many minutes (the chosen count is logged; pass it as --steps to reproduce)")
    p.add_argument("--calibrate", type=int, default=40)
    p.add_argument("--deadline-min", type=float, default=0, help="hard stop for the training loop")
    p.add_argument("--stop-at", type=int, default=0, help="stop after this step (schedule still uses --steps)")
    p.add_argument("--sample-tokens", type=int, default=80)
    a = p.parse_args()

    if a.samples:
        torch.set_num_threads(a.threads)
        print_samples(a.samples, max_new=a.sample_tokens)
        return
    if a.measure:
        measure(a)
        return
    if a.smoke:
        a.out = tempfile.mkdtemp(prefix="kjv-retnet-smoke-")
        a.vocab, a.dim, a.layers, a.heads, a.ffn, a.value_dim = 512, 64, 2, 2, 128, 0
        a.seq, a.batch, a.steps, a.warmup, a.log_every, a.sample_tokens = 64, 8, 60, 10, 10, 20
        a.budget_min, a.calibrate = 0.25, 10
    if a.budget_min:
        assert a.calibrate <= a.warmup, "--calibrate must not exceed --warmup (the LR schedule must not depend on it)"
    train(a)


if __name__ == "__main__":
    main()

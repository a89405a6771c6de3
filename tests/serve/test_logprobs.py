"""logprobs through the openai client: completions (`logprobs: k`, OpenAI's legacy shape) and chat
(`logprobs: true`, `top_logprobs`), streaming and not. The values are checked against an independent
computation: `retnet logits` (a separate process: one session, prefill then decode, no batching) for
the same tokens, and a log-softmax in Python's double precision with math.fsum.

Tolerance 1e-5: the logits are the same fp32 numbers in both (the server prefills a cold prompt in the
same block and decodes with decode_batch, which equals single-row decode bit for bit, as `retnet logits
--prefill K` does), so the only difference is the server rounding its log-softmax to fp32: half an ulp,
under 1e-6 for logprobs above -16; 1e-5 leaves room without hiding a wrong distribution (temperature
0.7 or a missing max subtraction moves values by 1e-1 or more)."""
import ast
import math
import os
import struct
import subprocess

import pytest

from conftest import CLI, plain_chat_prompt

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "kjv-retnet")
TOL = 1e-5


def read_npy(path):
    """A float32 C-order 2-D .npy as a list of rows (format 1.0, as `retnet logits` writes it)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY"
    hlen = struct.unpack("<H", data[8:10])[0]
    header = ast.literal_eval(data[10:10 + hlen].decode("latin-1"))
    assert header["descr"] == "<f4" and not header["fortran_order"]
    rows, cols = header["shape"]
    flat = struct.unpack(f"<{rows * cols}f", data[10 + hlen:10 + hlen + 4 * rows * cols])
    return [flat[r * cols:(r + 1) * cols] for r in range(rows)]


def log_softmax(row):
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


def reference(prompt_ids, gen_ids, tmp_path):
    """log_softmax of `retnet logits` at each generated position: row i predicts gen_ids[i]."""
    out = tmp_path / "logits.npy"
    ids = prompt_ids + gen_ids
    subprocess.run([CLI, "-q", "logits", "-m", MODEL, "--ids", ",".join(map(str, ids)), "--prefill",
                    str(len(prompt_ids)), "-t", "2", "-o", str(out)], check=True)
    rows = read_npy(out)
    return [log_softmax(rows[len(prompt_ids) - 1 + i]) for i in range(len(gen_ids))]


def token_ids(server, tokens):
    """Each generated token string's id (a vocabulary token encodes to itself alone)."""
    ids = []
    for t in tokens:
        status, r = server.request("POST", "/tokenize", {"content": t, "add_special": False})
        assert status == 200 and len(r["tokens"]) == 1, (t, r)
        ids.append(r["tokens"][0])
    return ids


def prompt_ids(server, text):
    status, r = server.request("POST", "/tokenize", {"content": text, "add_special": True})
    assert status == 200
    return r["tokens"]


def check_against_reference(ref, chosen_ids, chosen_lps, tops):
    """The chosen tokens' logprobs and the top lists' values against the reference rows."""
    for i, row in enumerate(ref):
        assert abs(chosen_lps[i] - row[chosen_ids[i]]) < TOL, (i, chosen_lps[i], row[chosen_ids[i]])
        best = sorted(row, reverse=True)[:len(tops[i])]
        assert all(abs(a - b) < TOL for a, b in zip(tops[i], best)), (i, tops[i], best)


# Completions: each its own prompt, so that the prefix cache holds nothing of it (a cold prefill, as
# `retnet logits` makes).
@pytest.mark.parametrize("stream", [False, True])
def test_completion_logprobs_are_the_models_log_softmax(server, client, tmp_path, stream):
    prompt = "And Aaron spake unto Pharaoh, and said" if stream else "And Moses went up unto God, and the LORD called"
    args = dict(model="kjv-retnet", prompt=prompt, max_tokens=16, temperature=0, logprobs=5)
    if stream:
        tokens, lps, tops, offsets, text = [], [], [], [], ""
        for c in client.completions.create(stream=True, **args):
            ch = c.choices[0]
            text += ch.text
            if ch.logprobs is None:
                assert ch.finish_reason is not None and ch.text == ""
                continue
            tokens += ch.logprobs.tokens
            lps += ch.logprobs.token_logprobs
            tops += ch.logprobs.top_logprobs
            offsets += ch.logprobs.text_offset
        completion_tokens = len(tokens)
    else:
        r = client.completions.create(**args)
        lp = r.choices[0].logprobs
        text, tokens, lps, tops, offsets = r.choices[0].text, lp.tokens, lp.token_logprobs, lp.top_logprobs, \
            lp.text_offset
        completion_tokens = r.usage.completion_tokens
    assert completion_tokens == 16 and len(tokens) == 16
    assert "".join(tokens) == text
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    for t, l, top in zip(tokens, lps, tops):
        # Greedy: the chosen token is the most likely one, so it is among the 5 (no sixth entry).
        assert len(top) == 5 and top[t] == l and max(top.values()) == l
        assert list(top.values()) == sorted(top.values(), reverse=True)
    ids = token_ids(server, tokens)
    ref = reference(prompt_ids(server, prompt), ids, tmp_path)
    check_against_reference(ref, ids, lps, [list(t.values()) for t in tops])


@pytest.mark.parametrize("stream", [False, True])
def test_chat_logprobs_are_the_models_log_softmax(server, client, tmp_path, stream):
    messages = [{"role": "user", "content": "What did Noah build" + ("?" if stream else ", and why?")}]
    args = dict(model="kjv-retnet", messages=messages, max_tokens=10, temperature=0, logprobs=True, top_logprobs=3)
    if stream:
        content, text = [], ""
        for c in client.chat.completions.create(stream=True, **args):
            if not c.choices:
                continue
            text += c.choices[0].delta.content or ""
            if c.choices[0].logprobs is not None:
                content += c.choices[0].logprobs.content
    else:
        r = client.chat.completions.create(**args)
        text, content = r.choices[0].message.content, r.choices[0].logprobs.content
    joined = "".join(e.token for e in content)
    # The text ends at "\nUser:" (the template's stop string) or at max_tokens: the entries are those of
    # the tokens with a byte in the text, so they may run on into the stop string's start.
    assert joined.startswith(text) and "\nUser:".startswith(joined[len(text):]), (joined, text)
    assert len(content) >= 1
    for e in content:
        assert e.bytes == list(e.token.encode("utf-8"))
        assert len(e.top_logprobs) == 3
        assert e.top_logprobs[0].token == e.token and e.top_logprobs[0].logprob == e.logprob
        assert [t.logprob for t in e.top_logprobs] == sorted((t.logprob for t in e.top_logprobs), reverse=True)
        assert all(t.bytes == list(t.token.encode("utf-8")) for t in e.top_logprobs)
    ids = token_ids(server, [e.token for e in content])
    ref = reference(prompt_ids(server, plain_chat_prompt(messages)), ids, tmp_path)
    check_against_reference(ref, ids, [e.logprob for e in content],
                            [[t.logprob for t in e.top_logprobs] for e in content])


def test_sampled_tokens_report_the_raw_distribution(server, client, tmp_path):
    # Temperature and penalties change what is sampled, not the reported distribution; logprobs=0 gives
    # the chosen token alone.
    prompt = "Blessed are the meek: for they"
    r = client.completions.create(model="kjv-retnet", prompt=prompt, max_tokens=8, temperature=1.5, seed=5,
                                  logprobs=0, frequency_penalty=1.0)
    lp = r.choices[0].logprobs
    assert "".join(lp.tokens) == r.choices[0].text
    assert all(list(top) == [t] and top[t] == l for t, l, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs))
    ids = token_ids(server, lp.tokens)
    check_against_reference(reference(prompt_ids(server, prompt), ids, tmp_path), ids, lp.token_logprobs,
                            [[]] * len(ids))


def test_without_logprobs_there_are_none(client):
    r = client.completions.create(model="kjv-retnet", prompt="In the beginning", max_tokens=3)
    assert r.choices[0].logprobs is None
    c = client.chat.completions.create(model="kjv-retnet", messages=[{"role": "user", "content": "Hi"}], max_tokens=3,
                                       logprobs=False)
    assert c.choices[0].logprobs is None


@pytest.mark.parametrize("path,extra,param", [
    ("/v1/completions", {"logprobs": -1}, "logprobs"),
    ("/v1/completions", {"logprobs": 21}, "logprobs"),
    ("/v1/completions", {"logprobs": "5"}, "logprobs"),
    ("/v1/completions", {"logprobs": True}, "logprobs"),
    ("/v1/completions", {"logprobs": 2.5}, "logprobs"),
    ("/v1/completions", {"top_logprobs": 2}, "top_logprobs"),
    ("/v1/chat/completions", {"top_logprobs": 2}, "top_logprobs"),
    ("/v1/chat/completions", {"logprobs": False, "top_logprobs": 2}, "top_logprobs"),
    ("/v1/chat/completions", {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ("/v1/chat/completions", {"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
    ("/v1/chat/completions", {"logprobs": True, "top_logprobs": "3"}, "top_logprobs"),
    ("/v1/chat/completions", {"logprobs": "yes"}, "logprobs"),
    ("/v1/chat/completions", {"logprobs": 1}, "logprobs"),
])
def test_bad_logprobs_are_400_naming_the_field(server, path, extra, param):
    body = {"max_tokens": 1, **extra}
    body.update({"messages": [{"role": "user", "content": "x"}]} if "chat" in path else {"prompt": "x"})
    status, r = server.request("POST", path, body)
    assert status == 400, r
    assert r["error"]["param"] == param and r["error"]["type"] == "invalid_request_error", r

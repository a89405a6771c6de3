"""echo on /v1/completions through the openai client and plain HTTP: the prompt's text before the
completion and, with logprobs, the prompt's tokens before the generated ones (the first without a
logprob), in the shapes lm-evaluation-harness's `local-completions` sends (`max_tokens: 0`, a prompt of
token ids in a one-element list). The prompt's values are checked against `retnet logits` (a separate
process: one all_logits prefill of the prompt) and a log-softmax in Python's double precision, within
test_logprobs.py's tolerance (1e-5: the logits are the same fp32 numbers, the server prefills in the
same blocks; the only difference is the fp32 rounding of the log-softmax)."""
import os
import subprocess

from conftest import CLI
from test_logprobs import MODEL, TOL, log_softmax, prompt_ids, read_npy

# Each test its own prompts, none a prefix of another test's (here or in the other files, which share
# the server): a plain request resuming from a snapshot an echo left mid-prompt would differ from a
# cold prefill by float rounding (README: prefix-state cache), which their comparisons do not allow.
PROMPT = "And the LORD spake unto Moses, saying, Speak unto the children of Israel"
PROMPT2 = "Now the serpent was more subtil than any beast of the field"
PROMPT3 = "And God called the light Day, and the darkness he called Night"


def prompt_reference(ids, tmp_path):
    """log_softmax of `retnet logits` over the prompt: row i - 1 is the distribution of ids[i]."""
    out = tmp_path / "prompt_logits.npy"
    subprocess.run([CLI, "-q", "logits", "-m", MODEL, "--ids", ",".join(map(str, ids)), "-t", "2", "-o", str(out)],
                   check=True)
    return [log_softmax(r) for r in read_npy(out)]


def check_prompt_part(lp, ids, ref, k):
    """The first len(ids) entries of a legacy logprobs object against the reference rows."""
    n = len(ids)
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    for i in range(1, n):
        row = ref[i - 1]
        assert abs(lp["token_logprobs"][i] - row[ids[i]]) < TOL, (i, lp["token_logprobs"][i], row[ids[i]])
        top = lp["top_logprobs"][i]
        best = sorted(row, reverse=True)[:k]
        # The top k, plus the prompt's own token when it is not among them.
        assert len(top) in (k, k + 1) and lp["tokens"][i] in top
        values = sorted(top.values(), reverse=True)
        assert all(abs(a - b) < TOL for a, b in zip(values, best)), (i, values, best)


def test_scoring_request_gives_the_prompts_logprobs(server, tmp_path):
    # What a scorer sends: the prompt's logprobs only.
    ids = prompt_ids(server, PROMPT)
    status, r = server.request("POST", "/v1/completions",
                               {"prompt": PROMPT, "max_tokens": 0, "echo": True, "logprobs": 1})
    assert status == 200, r
    c = r["choices"][0]
    assert c["text"] == PROMPT and c["finish_reason"] == "length"
    lp = c["logprobs"]
    assert len(lp["tokens"]) == len(ids) == r["usage"]["prompt_tokens"]
    assert r["usage"]["completion_tokens"] == 0
    # The prompt starts with BOS (an entry whose text the decoded text skips), then its words.
    assert lp["tokens"][0] == "<|endoftext|>" and "".join(lp["tokens"][1:]) == PROMPT
    assert lp["text_offset"] == [0] + [sum(len(t) for t in lp["tokens"][1:i]) for i in range(1, len(ids))]
    ref = prompt_reference(ids, tmp_path)
    check_prompt_part(lp, ids, ref, 1)

    # lm-evaluation-harness's shape: token ids in a one-element list, temperature 0, a seed; the same
    # values. A second identical request gets them again (the prefix cache cannot hold them: nothing
    # is reused).
    body = {"model": "kjv-retnet", "prompt": [ids], "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0,
            "seed": 1234}
    for _ in range(2):
        status, r2 = server.request("POST", "/v1/completions", body)
        assert status == 200, r2
        assert r2["choices"][0]["text"] == PROMPT
        assert r2["choices"][0]["logprobs"]["token_logprobs"] == lp["token_logprobs"]
        assert r2["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    # The other prompt shapes the server takes (plain token ids, a one-element list of a string), and
    # max_tokens 1 (lm-evaluation-harness reads token_logprobs[ctxlen:-1], dropping the generated one).
    for extra in ({"prompt": ids}, {"prompt": [PROMPT]}, {"prompt": [ids], "max_tokens": 1}):
        status, r3 = server.request("POST", "/v1/completions", {**body, **extra})
        assert status == 200, r3
        got = r3["choices"][0]["logprobs"]
        assert got["token_logprobs"][:len(ids)] == lp["token_logprobs"], extra
        assert len(got["tokens"]) == len(ids) + extra.get("max_tokens", 0)
        assert r3["choices"][0]["text"].startswith(PROMPT)


def test_echo_then_completion_equals_the_plain_request(client, server, tmp_path):
    args = dict(model="kjv-retnet", prompt=PROMPT2, max_tokens=12, temperature=0, logprobs=3)
    plain = client.completions.create(**args)
    echo = client.completions.create(echo=True, **args)
    ids = prompt_ids(server, PROMPT2)
    n = len(ids)
    e, p = echo.choices[0], plain.choices[0]
    assert e.text == PROMPT2 + p.text
    assert len(e.logprobs.tokens) == n + 12 and e.logprobs.tokens[n:] == p.logprobs.tokens
    assert all(abs(a - b) < TOL for a, b in zip(e.logprobs.token_logprobs[n:], p.logprobs.token_logprobs))
    assert e.logprobs.text_offset[n:] == [len(PROMPT2) + o for o in p.logprobs.text_offset]
    assert echo.usage.completion_tokens == plain.usage.completion_tokens == 12
    assert echo.usage.prompt_tokens_details.cached_tokens == 0
    ref = prompt_reference(ids, tmp_path)
    check_prompt_part(e.logprobs.model_dump(), ids, ref, 3)

    # Without logprobs: the prompt, then the same completion.
    bare = client.completions.create(model="kjv-retnet", prompt=PROMPT2, max_tokens=12, temperature=0, echo=True)
    assert bare.choices[0].text == PROMPT2 + p.text and bare.choices[0].logprobs is None


def test_streaming_echo_sends_the_prompt_first(client, server):
    args = dict(model="kjv-retnet", prompt=PROMPT3, max_tokens=8, temperature=0, logprobs=2, echo=True)
    whole = client.completions.create(**args)
    chunks = [c for c in client.completions.create(stream=True, **args) if c.choices]
    n = len(prompt_ids(server, PROMPT3))
    first = chunks[0].choices[0]
    assert first.text == PROMPT3 and len(first.logprobs.tokens) == n
    assert first.logprobs.token_logprobs[0] is None
    text, tokens, lps, offsets = "", [], [], []
    for c in chunks:
        ch = c.choices[0]
        text += ch.text
        if ch.logprobs is not None:
            tokens += ch.logprobs.tokens
            lps += ch.logprobs.token_logprobs
            offsets += ch.logprobs.text_offset
    w = whole.choices[0]
    assert text == w.text and tokens == w.logprobs.tokens and offsets == w.logprobs.text_offset
    assert lps[0] is None and all(abs(a - b) < TOL for a, b in zip(lps[1:], w.logprobs.token_logprobs[1:]))


def test_echo_is_refused_on_chat_and_past_the_prompt_limit(server):
    status, r = server.request("POST", "/v1/chat/completions",
                               {"messages": [{"role": "user", "content": "x"}], "echo": True})
    assert status == 400 and r["error"]["param"] == "echo", r
    # At --max-prompt-tokens (8192 here) with the most alternatives: every prompt token's entry (the
    # server holds one block's logits at a time; 4.7 MB of JSON). Past it: a clear 400 before any work.
    ids = [0] + [(i * 37) % 4000 + 50 for i in range(8191)]
    status, r = server.request("POST", "/v1/completions",
                               {"prompt": [ids], "max_tokens": 0, "echo": True, "logprobs": 20}, timeout=120)
    assert status == 200, r
    lp = r["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == 8192 and lp["token_logprobs"][0] is None
    assert all(len(t) in (20, 21) for t in lp["top_logprobs"][1:])
    status, r = server.request("POST", "/v1/completions",
                               {"prompt": [[1] * 8193], "max_tokens": 0, "echo": True, "logprobs": 5})
    assert status == 400 and r["error"]["param"] == "prompt" and "8192" in r["error"]["message"], r


def test_a_batch_of_prompts_gives_each_its_own_choices(server, client):
    # lm-evaluation-harness with batch_size > 1 sends its prompts as one list; choice q * n + i is prompt
    # q's choice i, the same as the prompt alone gives (seed + i), and usage counts each prompt once.
    a, b = "Thus saith the LORD of hosts, the God of Israel", "Then answered Jesus and said unto them"
    ids_a, ids_b = prompt_ids(server, a), prompt_ids(server, b)
    body = {"prompt": [ids_a, ids_b], "max_tokens": 0, "echo": True, "logprobs": 2}
    status, r = server.request("POST", "/v1/completions", body)
    assert status == 200, r
    assert [c["index"] for c in r["choices"]] == [0, 1]
    for c, ids, text in zip(r["choices"], (ids_a, ids_b), (a, b)):
        status, alone = server.request("POST", "/v1/completions", {**body, "prompt": ids})
        assert c["text"] == text and c["logprobs"] == alone["choices"][0]["logprobs"]
    assert r["usage"]["prompt_tokens"] == len(ids_a) + len(ids_b) and r["usage"]["completion_tokens"] == 0

    args = dict(model="kjv-retnet", max_tokens=6, temperature=0.9, seed=21, n=2, echo=True)
    batch = client.completions.create(prompt=[a, b], **args)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]
    singles = [client.completions.create(prompt=p, **args) for p in (a, b)]
    assert [c.text for c in batch.choices] == [c.text for s in singles for c in s.choices]
    assert batch.usage.prompt_tokens == len(ids_a) + len(ids_b)
    assert batch.usage.completion_tokens == sum(s.usage.completion_tokens for s in singles)
    # Streamed: each choice's chunks carry its index; its echo comes first.
    texts = {}
    for c in client.completions.create(prompt=[a, b], stream=True, **args):
        for ch in c.choices:
            if ch.index not in texts:
                assert ch.text == (a if ch.index < 2 else b)
            texts[ch.index] = texts.get(ch.index, "") + ch.text
    assert [texts[i] for i in range(4)] == [c.text for c in batch.choices]

    # More choices than --max-n (4 here): a clear 400 naming the limit. Mixed or bad elements: 400.
    status, r = server.request("POST", "/v1/completions", {"prompt": [a, b, a], "n": 2})
    assert status == 400 and r["error"]["param"] == "prompt" and "6 choices" in r["error"]["message"], r
    for bad in ([a, 3], [[1, 2], {"x": 1}], [ids_a, [-1]]):
        status, r = server.request("POST", "/v1/completions", {"prompt": bad})
        assert status == 400 and r["error"]["param"] == "prompt", (bad, r)

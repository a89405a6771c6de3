"""`retnet serve` through the real OpenAI client: completions and chat, streaming and not, stop
strings, usage counts, n, the prefix cache, tokenize/detokenize. Every generated text is compared with
`retnet generate` on the same prompt and settings (an independent path: one session, no batching)."""
import openai
import pytest

from conftest import API_KEY, generate, openai_client, plain_chat_prompt

PROMPT = "And God said, Let there be light"


def test_health_needs_no_key_and_models_lists_the_model(server, client):
    status, body = server.request("GET", "/health", headers={"Authorization": ""})
    assert status == 200 and body["status"] == "ok" and body["slots_total"] == 4
    models = client.models.list()
    assert [m.id for m in models.data] == ["kjv-retnet"]
    assert client.models.retrieve("kjv-retnet").id == "kjv-retnet"


def test_greedy_completion_equals_generate(client):
    r = client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=24, temperature=0)
    assert r.choices[0].text == generate(PROMPT, 24)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 24


def test_seeded_sampling_equals_generate(client):
    # The same seed gives the same tokens as `retnet generate --seed` (top_k/top_p from the model's
    # generation_config.json in both).
    r = client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=24, temperature=0.9, seed=1234)
    assert r.choices[0].text == generate(PROMPT, 24, 0.9, 1234)


def test_usage_counts_the_prompt_tokens(server, client):
    status, tok = server.request("POST", "/tokenize", {"content": PROMPT, "add_special": True})
    assert status == 200
    r = client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=5, temperature=0)
    assert r.usage.prompt_tokens == len(tok["tokens"])
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    status, de = server.request("POST", "/detokenize", {"tokens": tok["tokens"]})
    assert status == 200 and de["content"] == PROMPT


def test_token_id_prompt_equals_text_prompt(server, client):
    _, tok = server.request("POST", "/tokenize", {"content": PROMPT, "add_special": True})
    r = client.completions.create(model="kjv-retnet", prompt=tok["tokens"], max_tokens=12, temperature=0)
    assert r.choices[0].text == generate(PROMPT, 12)


def test_streaming_completion_equals_non_streaming(client):
    chunks = list(client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=20, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == generate(PROMPT, 20)
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["length"]
    assert chunks[-1].usage.completion_tokens == 20 and not chunks[-1].choices


def test_sse_ends_with_done(server):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/completions", body='{"prompt": "In the beginning", "max_tokens": 5, "stream": true}',
                 headers={"Authorization": f"Bearer {API_KEY}"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
    events = [e for e in r.read().decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_stop_string_cuts_the_text(client):
    full = generate(PROMPT, 24)
    word = full.split()[4]
    r = client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=24, temperature=0, stop=[word, "zzz"])
    assert r.choices[0].text == full[:full.index(word)]
    assert r.choices[0].finish_reason == "stop"
    # Streaming gives the same cut text (held back while it may be a stop string's start).
    s = client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=24, temperature=0, stop=word,
                                  stream=True)
    assert "".join(c.choices[0].text for c in s if c.choices) == full[:full.index(word)]


def test_stop_token_id_ends_generation(server, client):
    full = generate(PROMPT, 24)
    _, tok = server.request("POST", "/tokenize", {"content": full})
    stop_id = tok["tokens"][3]
    r = client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=24, temperature=0,
                                  extra_body={"stop_token_ids": [stop_id]})
    assert r.choices[0].finish_reason == "stop"
    assert full.startswith(r.choices[0].text) and len(r.choices[0].text) < len(full)


def test_n_choices_use_consecutive_seeds(client):
    r = client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=10, temperature=0.9, seed=7, n=3)
    assert [c.index for c in r.choices] == [0, 1, 2]
    for i, c in enumerate(r.choices):
        assert c.text == generate(PROMPT, 10, 0.9, 7 + i)
    assert r.usage.completion_tokens == 30


def test_chat_uses_the_plain_template(client):
    messages = [{"role": "system", "content": "Answer from the scriptures."},
                {"role": "user", "content": "Who made the heaven and the earth?"}]
    r = client.chat.completions.create(model="kjv-retnet", messages=messages, max_tokens=12, temperature=0)
    want = generate(plain_chat_prompt(messages), 12).split("\nUser:")[0]
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == want
    stream = client.chat.completions.create(model="kjv-retnet", messages=messages, max_tokens=12, temperature=0,
                                            stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == want


def test_second_chat_turn_resumes_from_the_cache(client):
    turn1 = [{"role": "user", "content": "Tell me of Moses and the children of Israel in Egypt."}]
    r1 = client.chat.completions.create(model="kjv-retnet", messages=turn1, max_tokens=16, temperature=0)
    reply = r1.choices[0].message.content
    turn2 = turn1 + [{"role": "assistant", "content": reply.strip()},
                     {"role": "user", "content": "And what came after?"}]
    r2 = client.chat.completions.create(model="kjv-retnet", messages=turn2, max_tokens=16, temperature=0)
    cached = r2.usage.prompt_tokens_details.cached_tokens
    # At least the first turn's prompt was resumed; the new tokens are the reply and the new message.
    assert cached >= r1.usage.prompt_tokens - 1, (cached, r1.usage)
    assert cached < r2.usage.prompt_tokens
    # The resumed state continues as a cold run does: same greedy text as `retnet generate`.
    assert r2.choices[0].message.content == generate(plain_chat_prompt(turn2), 16).split("\nUser:")[0]
    # The same request again is answered from the cache whole (its logits were stored with it).
    r3 = client.chat.completions.create(model="kjv-retnet", messages=turn2, max_tokens=16, temperature=0)
    assert r3.usage.prompt_tokens_details.cached_tokens == r3.usage.prompt_tokens
    assert r3.choices[0].message.content == r2.choices[0].message.content


def test_openai_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4", prompt="x", max_tokens=1)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="kjv-retnet", prompt="x", max_tokens=-1)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="kjv-retnet", prompt="x", max_tokens=10**9)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="kjv-retnet", prompt="x", n=99)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="kjv-retnet", prompt="x", temperature=-5e40)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="kjv-retnet", messages=[{"role": "wizard", "content": "x"}])
    bad = openai_client(client.base_url, "wrong")
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_metrics_in_prometheus_text_format(server, client):
    client.completions.create(model="kjv-retnet", prompt=PROMPT, max_tokens=6, temperature=0)
    status, text = server.request("GET", "/metrics")
    assert status == 200 and isinstance(text, str)
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    assert values['retnet_requests_total{route="/v1/completions",status="200"}'] >= 1
    assert values["retnet_completion_tokens_total"] >= 6
    assert values["retnet_slots_total"] == 4
    assert values["retnet_decode_tokens_total"] >= values["retnet_decode_steps_total"] > 0
    for h in ("retnet_time_to_first_token_seconds", "retnet_inter_token_latency_seconds"):
        buckets = [v for k, v in values.items() if k.startswith(h + "_bucket")]
        assert buckets == sorted(buckets) and buckets[-1] == values[h + "_count"] > 0
    # Like every route but /health, it needs the key.
    status, _ = server.request("GET", "/metrics", headers={"Authorization": ""})
    assert status == 401

"""Chat through a model's Jinja chat template: a copy of the bundled model whose tokenizer_config.json
holds tests/data/chat_templates/serve-kjv.jinja. The prompt the server builds must be the text Python's
jinja2 renders (stored in expected.json by tools/make_chat_template_fixtures.py, so jinja2 is not needed
here), tokenized without a second BOS; raise_exception in the template is a 400."""
import json
import os
import shutil

import openai
import pytest

from conftest import API_KEY, Server, openai_client

SRC = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(SRC, "..", "data", "chat_templates")
MODEL = os.path.join(SRC, "..", "..", "models", "kjv-retnet")


@pytest.fixture(scope="module")
def fixture():
    with open(os.path.join(DATA, "expected.json"), encoding="utf-8") as f:
        return json.load(f)["serve"]


@pytest.fixture(scope="module")
def templated(tmp_path_factory, fixture):
    d = tmp_path_factory.mktemp("kjv-chat")
    for name in os.listdir(MODEL):
        if name != "tokenizer_config.json":
            os.symlink(os.path.abspath(os.path.join(MODEL, name)), d / name)
    with open(os.path.join(MODEL, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    with open(os.path.join(DATA, fixture["template"]), encoding="utf-8") as f:
        cfg["chat_template"] = f.read()
    with open(d / "tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(cfg, f)
    s = Server("-m", str(d), "--alias", "kjv-chat", "--api-key", API_KEY, "--max-tokens", "64")
    yield s
    assert s.stop() == 0, "".join(s.stderr)


def test_chat_prompt_is_jinja2s_rendering(templated, fixture):
    client = openai_client(templated.base + "/v1")
    assert any("chat template: " in line and "tokenizer_config.json" in line for line in templated.stderr)
    models = client.models.list().model_dump()["data"]
    assert "tokenizer_config.json" in models[0]["meta"]["chat_template"]

    expected = fixture["expected"]
    assert expected.startswith("<|endoftext|>")  # the template writes BOS itself
    status, tok = templated.request("POST", "/tokenize", {"content": expected, "add_special": False})
    assert status == 200
    ids = tok["tokens"]
    assert ids.count(ids[0]) == expected.count("<|endoftext|>")  # BOS once, EOS once: nothing added

    chat = client.chat.completions.create(model="kjv-chat", messages=fixture["messages"], max_tokens=12,
                                          temperature=0, seed=3)
    assert chat.usage.prompt_tokens == len(ids)
    # The same tokens as a raw prompt continue the same way (greedy): the server's prompt is these ids.
    raw = client.completions.create(model="kjv-chat", prompt=ids, max_tokens=12, temperature=0, seed=3)
    assert raw.usage.prompt_tokens == len(ids)
    # Both stop at EOS only (no "\nUser:" stop string of the plain template), so the greedy texts agree.
    assert chat.choices[0].message.content == raw.choices[0].text
    assert chat.choices[0].finish_reason == raw.choices[0].finish_reason


def test_raise_exception_is_a_400(templated):
    client = openai_client(templated.base + "/v1")
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="kjv-chat", max_tokens=4,
                                       messages=[{"role": "user", "content": "Hi"},
                                                 {"role": "assistant", "content": "Hello"}])
    assert "The last message must be the user's, not the assistant's" in str(e.value)

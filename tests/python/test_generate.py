"""Generation: streaming equals non-streaming, and both equal the CLI's `retnet generate`."""
import numpy as np
import pytest

import retnet
from conftest import BUNDLED, run_cli

PROMPT = "And God said"


@pytest.mark.parametrize("seed", [1, 7, 12345])
def test_stream_equals_text_at_same_seed(bundled, seed):
    a = retnet.Session(bundled)
    text = a.generate(PROMPT, max_tokens=48, temperature=0.9, seed=seed)
    b = retnet.Session(bundled)
    pieces = list(b.generate(PROMPT, max_tokens=48, temperature=0.9, seed=seed, stream=True))
    assert len(pieces) > 1 and all(pieces)
    assert "".join(pieces) == text
    assert a.position == b.position
    assert b.last_generation.text == text and b.last_generation.generated_tokens == 48
    # Same state afterwards: the next step's logits agree bit for bit.
    assert np.array_equal(a.decode(5), b.decode(5))


def test_generate_equals_cli(bundled):
    # Default sampling of both: generation_config.json's values, then the explicit flags.
    out, _ = run_cli("generate", "-m", BUNDLED, "-p", PROMPT, "-n", 40, "-s", 42, "--top-k", 20, "-q", "--device", "cpu")
    s = retnet.Session(bundled)
    assert s.generate(PROMPT, max_tokens=40, seed=42, top_k=20) + "\n" == out  # the CLI ends with a newline


def test_stop_strings_and_ids(bundled):
    full = retnet.Session(bundled).generate(PROMPT, max_tokens=60, temperature=0)
    word = full.split()[3]
    s = retnet.Session(bundled)
    cut = s.generate(PROMPT, max_tokens=60, temperature=0, stop=[word])
    assert cut == full[: full.index(word)] and s.last_generation.stop == "stop"
    streamed = "".join(retnet.Session(bundled).generate(PROMPT, max_tokens=60, temperature=0, stop=word, stream=True))
    assert streamed == cut
    # A stop token id: generation ends before emitting it.
    tok = bundled.tokenizer
    first = tok.encode(full, add_special=False)[0]
    s2 = retnet.Session(bundled)
    assert s2.generate(PROMPT, max_tokens=60, temperature=0, stop=first) == ""
    assert s2.last_generation.stop == "eos"


def test_closing_a_stream_frees_the_session(bundled):
    s = retnet.Session(bundled)
    it = s.generate(PROMPT, max_tokens=100, temperature=0, stream=True)
    first = next(it)
    with pytest.raises(retnet.Error, match="in use"):
        s.decode(1)
    it.close()
    assert s.last_generation.stop == "cancelled" and s.last_generation.text.startswith(first)
    pos = s.position
    s.decode(1)
    assert s.position == pos + 1


def test_max_tokens_zero_absorbs_prompt_and_chat_continues(bundled):
    s = retnet.Session(bundled)
    assert s.generate(PROMPT, max_tokens=0) == ""
    n = len(bundled.tokenizer.encode(PROMPT))
    assert s.position == n
    s.generate(" unto Moses", max_tokens=5, temperature=0, add_special=False)
    assert s.position > n


def test_generate_from_ids_resumes_a_prefix(bundled):
    ids = bundled.tokenizer.encode(PROMPT)
    a = retnet.Session(bundled)
    a.prefill(ids[:-1])
    b = retnet.Session(bundled)
    assert a.generate(ids, absorbed=len(ids) - 1, max_tokens=20, seed=3) == b.generate(PROMPT, max_tokens=20, seed=3)

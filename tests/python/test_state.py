"""State snapshots: Python round trip, and a state saved in Python continued by the CLI."""
import re

import numpy as np
import pytest

import retnet
from conftest import BUNDLED, DATA, run_cli

PROMPT = "Blessed are the meek: for they shall"


def test_round_trip_in_python(bundled):
    a = retnet.Session(bundled)
    a.prefill(bundled.tokenizer.encode(PROMPT))
    data = a.save_state()
    assert isinstance(data, bytes)
    b = retnet.Session(bundled)
    b.load_state(data)
    assert b.position == a.position and b.logits() is None
    for t in (5, 99, 1000):
        assert np.array_equal(a.decode(t), b.decode(t))
    c = a.clone()
    assert np.array_equal(a.decode(7), c.decode(7))


def test_state_saved_in_python_continues_identically_in_cli(tmp_path, bundled):
    # The CLI's --prompt-cache resumes from a snapshot of the prompt's tokens but the last: write one
    # from Python, let the CLI continue from it, and continue the same snapshot in Python.
    ids = bundled.tokenizer.encode(PROMPT)
    s = retnet.Session(bundled)
    s.prefill(ids[:-1])
    cache = tmp_path / "prompt.state"
    s.save_state_file(cache)
    out, err = run_cli("generate", "-m", BUNDLED, "-p", PROMPT, "--prompt-cache", cache, "-n", 32, "-s", 5,
                       "--temp", 0.7, "--device", "cpu")
    assert re.search(rf"prompt cache: resuming {len(ids) - 1} of {len(ids)} prompt tokens", err), err
    r = retnet.Session(bundled)
    r.load_state(cache.read_bytes())
    text = r.generate(ids, absorbed=len(ids) - 1, max_tokens=32, seed=5, temperature=0.7)
    assert text + "\n" == out and len(text) > 0  # the CLI ends the text with a newline
    # And the same as never having saved anything.
    assert retnet.Session(bundled).generate(PROMPT, max_tokens=32, seed=5, temperature=0.7) + "\n" == out


def test_state_of_another_model_is_refused(bundled):
    other = retnet.Model.load(DATA / "ts_swish_scaled", device="cpu")
    s = retnet.Session(other)
    s.prefill([1, 2, 3])
    data = s.save_state()
    t = retnet.Session(bundled)
    t.prefill([4, 5])
    with pytest.raises(retnet.Error, match="snapshot"):
        t.load_state(data)
    assert t.position == 2  # unchanged


@pytest.mark.parametrize("cut", [0, 10, -1])
def test_damaged_state_is_refused(bundled, cut):
    s = retnet.Session(bundled)
    s.prefill([1, 2, 3])
    data = bytearray(s.save_state())
    if cut < 0:
        data[len(data) // 2] ^= 0x40
    else:
        data = data[:cut]
    with pytest.raises(retnet.Error):
        retnet.Session(bundled).load_state(bytes(data))

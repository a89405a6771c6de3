"""retnet.perplexity matches `retnet perplexity`."""
import re

import numpy as np
import pytest

import retnet
from conftest import BUNDLED, run_cli

TEXT = (BUNDLED / "validation.txt").read_text()[:6000]


def cli_ppl(path, *extra):
    out, _ = run_cli("perplexity", "-m", BUNDLED, "-f", path, "-q", "--device", "cpu", *extra)
    ppl = float(re.search(r"perplexity: ([0-9.]+)", out).group(1))
    n = int(re.search(r"tokens: ([0-9]+)", out).group(1))
    return ppl, n


@pytest.mark.parametrize("extra", [(), ("--ctx", "300"), ("--chunk-size", "32")])
def test_perplexity_matches_cli(tmp_path, bundled, extra):
    f = tmp_path / "text.txt"
    f.write_text(TEXT)
    want, n = cli_ppl(f, *extra)
    kw = {}
    if extra and extra[0] == "--ctx":
        kw["ctx"] = int(extra[1])
    if extra and extra[0] == "--chunk-size":
        kw["chunk_size"] = int(extra[1])
    r = retnet.perplexity(bundled, f, **kw)
    assert f"{r.perplexity:.6f}" == f"{want:.6f}" and r.scored == n
    # The same from the text and from its token ids.
    assert retnet.perplexity(bundled, text=TEXT, **kw).perplexity == r.perplexity
    ids = bundled.tokenizer.encode(TEXT)
    assert retnet.perplexity(bundled, ids, **kw).perplexity == r.perplexity
    assert r.nll.shape == (n,) and np.isclose(r.nll.mean(), r.mean_nll)


def test_perplexity_from_logits_in_double(bundled):
    # Independent of the C++ helper: log-softmax in float64 of retnet.logits' rows.
    ids = bundled.tokenizer.encode(TEXT[:800])
    lg = retnet.logits(bundled, ids).astype(np.float64)
    m = lg.max(axis=1, keepdims=True)
    logp = lg - m - np.log(np.exp(lg - m).sum(axis=1, keepdims=True))
    nll = -logp[np.arange(len(ids) - 1), ids[1:]]
    r = retnet.perplexity(bundled, ids)
    # Same logits (one chunkwise pass, blocks of whole chunks), same formula: equal up to float64 rounding.
    assert np.allclose(r.nll, nll, rtol=1e-12, atol=1e-12)


def test_perplexity_errors(tmp_path, bundled):
    with pytest.raises(retnet.Error, match="at least 2 tokens"):
        retnet.perplexity(bundled, [5])
    with pytest.raises(retnet.Error, match="ctx"):
        retnet.perplexity(bundled, [5, 6, 7], ctx=1)
    with pytest.raises(retnet.Error, match="No such file"):
        retnet.perplexity(bundled, tmp_path / "missing.txt")
    with pytest.raises(retnet.Error, match="exactly one"):
        retnet.perplexity(bundled)

"""Logits from Python against the CLI (bit for bit) and against the PyTorch goldens (tolerance)."""
import numpy as np
import pytest

import retnet
from conftest import BUNDLED, DATA, FIXTURES, MODES, golden, run_cli

# The bundled model's ids: the tokenizer's "In the beginning God created" plus a spread of others.
BUNDLED_IDS = [0, 1132, 259, 2098, 1755, 3001, 17, 4095, 5, 900, 2048, 33, 7, 7, 7, 1200, 64, 3999]


def model_dir(name):
    return BUNDLED if name == "kjv-retnet" else DATA / name


def ids_for(name):
    return BUNDLED_IDS if name == "kjv-retnet" else golden(name)["ids"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FIXTURES + ["kjv-retnet"])
def test_logits_equal_cli_bit_for_bit(tmp_path, name, mode):
    # The same library computes both, so they must agree exactly: any difference would be the
    # binding's (a wrong dtype, a lost row, a stale buffer).
    ids = ids_for(name)
    out = tmp_path / "cli.npy"
    run_cli("logits", "-m", model_dir(name), "--ids", ",".join(map(str, ids)), "--mode", mode, "--device", "cpu",
            "-o", out)
    want = np.load(out)
    model = retnet.Model.load(model_dir(name), device="cpu")
    got = retnet.logits(model, ids, mode=mode)
    assert got.dtype == np.float32 and got.shape == (len(ids), model.info.vocab_size)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    # The same through Session.prefill(all_logits=True).
    s = retnet.Session(model)
    assert np.array_equal(s.prefill(ids, mode=mode, all_logits=True), want)


@pytest.mark.parametrize("name", ["ts_swish_scaled", "fla_base", "kjv-retnet"])
def test_prefill_then_decode_equals_cli(tmp_path, name):
    ids = ids_for(name)
    k = len(ids) // 3
    out = tmp_path / "cli.npy"
    run_cli("logits", "-m", model_dir(name), "--ids", ",".join(map(str, ids)), "--chunk-size", 3, "--prefill", k,
            "--device", "cpu", "-o", out)
    want = np.load(out)
    model = retnet.Model.load(model_dir(name), device="cpu")
    assert np.array_equal(retnet.logits(model, ids, chunk_size=3, prefill=k), want)
    s = retnet.Session(model)
    rows = [s.prefill(ids[:k], chunk_size=3, all_logits=True)] + [s.decode(t)[None] for t in ids[k:]]
    assert np.array_equal(np.concatenate(rows), want)


@pytest.mark.parametrize("name", FIXTURES)
def test_logits_match_pytorch_goldens(name):
    # Independent reference: the PyTorch fp32 logits stored with each fixture (tools/make_fixtures.py).
    # Tolerance 1e-4 of the largest reference logit, as tests/e2e/golden_test.cpp: fp32 summation order
    # differs between the engine and PyTorch (measured there at <= 1e-5).
    g = golden(name)
    model = retnet.Model.load(DATA / name, device="cpu")
    for case in g["cases"]:
        ref = np.load(DATA / name / case["file"])
        got = retnet.logits(model, g["ids"], mode=case["mode"], chunk_size=case.get("chunk_size"))
        err = np.abs(got.astype(np.float64) - ref).max() / np.abs(ref).max()
        assert err < 1e-4, f"{name} {case}: max|d|/max|ref| = {err:.2e}"


def test_logits_without_copy_own_their_buffer(bundled):
    a = retnet.logits(bundled, BUNDLED_IDS)
    assert not a.flags.owndata and a.base is not None  # handed over, not copied
    assert a.flags.writeable
    b = retnet.logits(bundled, BUNDLED_IDS)
    a[:] = 0  # a is its own buffer: writing to it changes nothing else
    assert np.abs(b).max() > 0


def test_session_views_and_copies(bundled):
    s = retnet.Session(bundled)
    copy = s.prefill([0, 5, 9])
    view = s.prefill([11], copy=False)
    assert not view.flags.writeable
    snapshot = view.copy()
    s.decode(12)  # the view follows the session's buffer: documented
    assert not np.array_equal(view, snapshot)
    assert np.array_equal(s.logits(), view)
    assert copy.flags.writeable and copy.shape == (bundled.info.vocab_size,)


@pytest.mark.parametrize("qtype", ["q8_0", "q4_k"])
def test_quantize_at_load_equals_cli_and_a_quantized_directory(tmp_path, qtype):
    # Model.load(quantize=...) quantizes as `retnet quantize` does: the same bytes, so the logits of
    # prefill and of decode (int8-activation kernels) equal the CLI's, bit for bit, on the fly and from
    # the directory `retnet quantize` writes.
    ids = BUNDLED_IDS
    k = len(ids) // 2
    out = tmp_path / "cli.npy"
    run_cli("logits", "-m", BUNDLED, "--ids", ",".join(map(str, ids)), "--prefill", k, "--quantize", qtype,
            "--device", "cpu", "-o", out)
    want = np.load(out)
    model = retnet.Model.load(BUNDLED, device="cpu", quantize=qtype)
    assert np.array_equal(retnet.logits(model, ids, prefill=k), want)
    qdir = tmp_path / qtype
    run_cli("quantize", "-m", BUNDLED, "-o", qdir, "--type", qtype, "-q")
    again = retnet.Model.load(qdir, device="cpu")
    assert np.array_equal(retnet.logits(again, ids, prefill=k), want)
    with pytest.raises(retnet.Error, match="quantize: 'q3' is not one of"):
        retnet.Model.load(BUNDLED, device="cpu", quantize="q3")
    with pytest.raises(retnet.Error, match="quantize: expected None or one of"):
        retnet.Model.load(BUNDLED, device="cpu", quantize=4)
    assert model.info.weight_dtype == qtype and again.info.weight_dtype == qtype
    assert model.info.embedding_dtype == "BF16" and model.info.head_dtype == "q8_0"

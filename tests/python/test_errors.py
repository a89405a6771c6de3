"""Bad input gets retnet.Error with a clear message, never a crash (docs/bad-input.md lists these)."""
import shutil

import numpy as np
import pytest

import retnet
from conftest import BUNDLED, DATA


def test_error_is_a_runtime_error():
    assert issubclass(retnet.Error, RuntimeError) and retnet.Error.__module__ == "retnet"


def test_missing_directory(tmp_path):
    with pytest.raises(retnet.Error, match="does not exist"):
        retnet.Model.load(tmp_path / "nope")
    with pytest.raises(retnet.Error):
        retnet.Tokenizer.load(tmp_path / "nope")


def test_malformed_config_and_checkpoint(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(DATA / "ts_swish_scaled", bad)
    (bad / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(retnet.Error, match="model.safetensors"):
        retnet.Model.load(bad)
    data = (DATA / "ts_swish_scaled" / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(retnet.Error, match="model.safetensors"):
        retnet.Model.load(bad)
    (bad / "config.json").write_text("{ this is not json")
    with pytest.raises(retnet.Error, match="config.json"):
        retnet.Model.load(bad)


def test_out_of_vocabulary_ids_leave_the_state_unchanged(bundled):
    s = retnet.Session(bundled)
    s.prefill([1, 2])
    V = bundled.info.vocab_size
    for bad in ([V], [1, -1], [5, 2**31 - 1]):
        with pytest.raises(retnet.Error, match="outside the vocabulary"):
            s.prefill(bad)
    with pytest.raises(retnet.Error, match="outside the vocabulary"):
        s.decode(V)
    with pytest.raises(retnet.Error, match="outside the vocabulary"):
        retnet.logits(bundled, [0, V + 5])
    with pytest.raises(retnet.Error, match="int32"):
        s.prefill([2**40])
    assert s.position == 2


@pytest.mark.parametrize(
    "ids, msg",
    [
        (np.array([1.0, 2.0]), "dtype float64"),
        (np.array([1, 2], dtype=np.float32), "dtype float32"),
        ([1.5, 2], "dtype float64"),
        (np.array([True, False]), "dtype bool"),
        (np.array([[1, 2], [3, 4]]), r"shape \(2, 2\)"),
        (np.int64(3), "single int"),
        ("hello", "got str"),
        ([[1], [2, 3]], "not a sequence"),
        ([], "no tokens"),
    ],
)
def test_wrong_dtype_or_shape_of_ids(bundled, ids, msg):
    s = retnet.Session(bundled)
    with pytest.raises(retnet.Error, match=msg):
        s.prefill(ids)
    assert s.position == 0


def test_other_integer_dtypes_are_accepted(bundled):
    want = retnet.logits(bundled, [0, 5, 9])
    for dt in (np.int8, np.uint16, np.int64, np.uint64):
        assert np.array_equal(retnet.logits(bundled, np.array([0, 5, 9], dtype=dt)), want)
    assert np.array_equal(retnet.logits(bundled, np.array([0, 99, 5, 99, 9])[::2]), want)  # strided


def test_bad_arguments(bundled):
    s = retnet.Session(bundled)
    with pytest.raises(retnet.Error, match="mode"):
        s.prefill([1], mode="fast")
    with pytest.raises(retnet.Error, match="chunk_size"):
        s.prefill([1], chunk_size=0)
    with pytest.raises(retnet.Error, match="device"):
        retnet.Model.load(BUNDLED, device="tpu")
    with pytest.raises(retnet.Error, match="threads"):
        retnet.Model.load(BUNDLED, threads=-1)
    with pytest.raises(retnet.Error, match="dtype"):
        retnet.Model.load(BUNDLED, dtype="int3")
    with pytest.raises(retnet.Error, match="top_p"):
        s.generate("x", top_p=0.0)
    with pytest.raises(retnet.Error, match="stop"):
        s.generate("x", stop="")
    with pytest.raises(retnet.Error, match="load_state"):
        s.load_state("not bytes")
    with pytest.raises(retnet.Error, match="2 sessions but 1"):
        retnet.decode_batch([s, retnet.Session(bundled)], [1])
    with pytest.raises(retnet.Error):
        retnet.decode_batch([s, s], [1, 2])
    assert s.position == 0


def test_session_used_by_two_threads_at_once_is_refused_not_raced(bundled):
    import threading
    import time

    s = retnet.Session(bundled)
    started, done = threading.Event(), []
    ids = list(range(1, 3000))

    def long_prefill():  # about a second: 3000 recurrent steps
        started.set()
        s.prefill(ids, mode="recurrent")
        done.append(s.position)

    t = threading.Thread(target=long_prefill)
    t.start()
    started.wait()
    time.sleep(0.05)
    with pytest.raises(retnet.Error, match="in use by another call"):
        s.decode(1)
    t.join()
    assert done == [len(ids)]

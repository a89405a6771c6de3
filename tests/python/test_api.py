"""The package's shape: info, tokenizer, sessions, and the .pyi stubs matching the code."""
import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import retnet
from conftest import BUNDLED, run_cli


def test_info_is_a_frozen_dataclass(bundled):
    import dataclasses

    i = bundled.info
    assert dataclasses.is_dataclass(i) and i.family == "syncdoth" and i.vocab_size == 4096
    assert i.device == "cpu" and i.fingerprint != 0 and i.generation.top_k == 40
    with pytest.raises(dataclasses.FrozenInstanceError):
        i.layers = 3


def test_tokenizer_matches_cli(bundled):
    text = "In the beginning God created the heaven and the earth. Ünïcödé ✓"
    out, _ = run_cli("tokenize", "-m", BUNDLED, "-p", text, "--ids")
    ids = bundled.tokenizer.encode(text)
    assert ids == [int(x) for x in out.split()]
    assert bundled.tokenizer.decode(ids) == text
    t = retnet.Tokenizer.load(BUNDLED / "tokenizer.json")
    assert t.encode(text, add_special=False) == ids[1:] and t.bos_id == ids[0]
    assert b"".join(t.token_bytes(i, first=(k == 0)) for k, i in enumerate(ids[1:])).decode() == text


def test_session_basics(bundled):
    s = retnet.Session(bundled)
    assert s.position == 0 and s.logits() is None
    lg = s.prefill([0, 1, 2], all_logits=True)
    assert lg.shape == (3, 4096) and s.position == 3
    c = s.clone()
    s.decode(5)
    assert c.position == 3 and s.position == 4
    assert s.history_matches([0, 1, 2, 5]) and not s.history_matches([0, 1, 2])
    s.reset()
    assert s.position == 0 and s.stats.prompt_tokens == 0


def test_random_model_runs():
    m = retnet.Model.random(vocab_size=64, hidden_size=32, layers=1, heads=2, dtype="f32", device="cpu")
    assert m.path is None and m.info.vocab_size == 64
    assert retnet.logits(m, [1, 2, 3], mode="parallel").shape == (3, 64)
    with pytest.raises(retnet.Error, match="tokenizer"):
        retnet.Session(m).generate("hi")


def _stub_signatures(tree):
    sigs = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            sigs[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for f in node.body:
                if isinstance(f, ast.FunctionDef):
                    sigs[f"{node.name}.{f.name}"] = f
    return sigs


def test_stubs_match_the_code():
    import dataclasses

    # __init__.pyi is what type checkers and IDEs read: every public function and method in it must
    # take the parameters the code takes, with the same names, kinds and order.
    stub = Path(retnet.__file__).with_name("__init__.pyi")
    sigs = _stub_signatures(ast.parse(stub.read_text()))
    checked = 0
    for name in retnet.__all__:
        obj = getattr(retnet, name)
        members = [(name, obj)] if inspect.isfunction(obj) else []
        if inspect.isclass(obj):
            for mname, m in vars(obj).items():
                if mname.startswith("_") and mname != "__init__":
                    continue
                if isinstance(m, (classmethod, staticmethod)):
                    m = m.__func__
                if inspect.isfunction(m):
                    members.append((f"{name}.{mname}", m))
        for qual, fn in members:
            if qual.endswith(".__init__") and dataclasses.is_dataclass(obj):
                continue  # generated from the fields, which the stub declares
            assert qual in sigs, f"{qual} is missing from __init__.pyi"
            a = sigs[qual].args
            stub_names = [x.arg for x in a.posonlyargs + a.args] + [x.arg for x in a.kwonlyargs]
            real = list(inspect.signature(fn).parameters)
            assert stub_names == real, f"{qual}: stub {stub_names} != code {real}"
            checked += 1
    assert checked > 20

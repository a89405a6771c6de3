"""A state round trip: prefill a long context once, save it, and continue from it later, here or in
another process (or in the CLI: `retnet generate --prompt-cache FILE`, or C++ Session::load_state_file).

    python examples/python/state_roundtrip.py [MODEL_DIR]
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

import retnet

model_dir = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "models" / "kjv-retnet"
model = retnet.Model.load(model_dir)
tok = model.tokenizer

context = "In the beginning God created the heaven and the earth. " * 20
ids = tok.encode(context)
session = retnet.Session(model)
session.prefill(ids)
state = session.save_state()  # bytes: constant size whatever the context length
print(f"{len(ids)} tokens of context -> a snapshot of {len(state)} bytes")

# Later (another Session, another process): load and continue; the snapshot checks the model.
resumed = retnet.Session(model)
resumed.load_state(state)
assert resumed.position == len(ids) and resumed.history_matches(ids)
a, b = session.decode(tok.encode(" And", add_special=False)[0]), resumed.decode(tok.encode(" And", add_special=False)[0])
print("identical logits after resuming:", np.array_equal(a, b))

with tempfile.TemporaryDirectory() as d:
    path = Path(d) / "context.state"
    session.save_state_file(path)  # written atomically
    other = retnet.Session(model)
    other.load_state_file(path)
    print("from the file:", other.generate(" And", max_tokens=16, temperature=0, add_special=False))

# A snapshot of another model is refused (retnet.Error), and the session is left as it was.
try:
    retnet.Session(retnet.Model.random(vocab_size=64, hidden_size=32, layers=1, heads=1)).load_state(state)
except retnet.Error as e:
    print("refused:", e)

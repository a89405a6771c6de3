"""Streaming generation: pieces of text (whole UTF-8 characters) as they are produced; a chat that keeps
its state between turns.

    python examples/python/stream.py [MODEL_DIR]
"""
import sys
from pathlib import Path

import retnet

model_dir = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "models" / "kjv-retnet"
model = retnet.Model.load(model_dir)
session = retnet.Session(model)

for turn in ["Blessed are the poor in spirit:", " And he said unto them,"]:
    sys.stdout.write(turn)
    # Each turn continues the same state: the recurrent state holds the whole conversation.
    for piece in session.generate(turn, max_tokens=40, seed=7, stream=True, add_special=session.position == 0):
        sys.stdout.write(piece)
        sys.stdout.flush()
    print()
print(f"[{session.position} tokens in a state of {model.info.state_bytes} bytes]", file=sys.stderr)

# Breaking out of a stream stops the generation; the session holds what was yielded.
for i, piece in enumerate(session.generate(" Then", max_tokens=100, stream=True, seed=1)):
    if i == 5:
        break
print(f"[stopped after 5 pieces: {session.last_generation.stop}]", file=sys.stderr)

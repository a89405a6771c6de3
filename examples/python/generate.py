"""Text generation with the bundled model (or MODEL_DIR): greedy, then sampled at a fixed seed.

    python examples/python/generate.py [MODEL_DIR]
"""
import sys
from pathlib import Path

import retnet

model_dir = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "models" / "kjv-retnet"
model = retnet.Model.load(model_dir)  # device="auto": CUDA when built with it and a GPU is present
print(model, file=sys.stderr)

session = retnet.Session(model)
print("greedy :", session.generate("In the beginning", max_tokens=32, temperature=0))

session.reset()
text = session.generate("And God said", max_tokens=48, temperature=0.8, top_k=40, top_p=0.95, seed=42,
                        stop=["\n\n"])
r = session.last_generation
print("sampled:", text)
print(f"({r.generated_tokens} tokens, stop: {r.stop}, {r.generated_tokens / (r.eval_ms / 1000):.0f} tokens/s)",
      file=sys.stderr)

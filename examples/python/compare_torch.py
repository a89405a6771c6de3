"""Side by side with a PyTorch reference, when torch (and torchscale) are installed: the engine's
logits in every retention mode against torchscale's RetNetDecoder on the bundled model, in fp32.

    python examples/python/compare_torch.py [MODEL_DIR]

Without torch this prints what it would compare and exits 0. The reference is the one
tools/perplexity_reference.py runs (torchscale 0.3.0; tools/setup_python.sh makes a venv with it).
"""
import importlib.util
import sys
from pathlib import Path

import numpy as np

import retnet

root = Path(__file__).resolve().parents[2]
model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "models" / "kjv-retnet"
model = retnet.Model.load(model_dir, device="cpu")
ids = model.tokenizer.encode("In the beginning God created the heaven and the earth.")
ours = {mode: retnet.logits(model, ids, mode=mode) for mode in ("parallel", "recurrent", "chunkwise")}
for mode, lg in ours.items():
    print(f"retnet {mode:9s}: logits {lg.shape}, max |Δ| vs chunkwise {np.abs(lg - ours['chunkwise']).max():.2e}")

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchscale") is None:
    print("torch/torchscale not installed: no PyTorch side (tools/setup_python.sh makes a venv with them)")
    sys.exit(0)

sys.path.insert(0, str(root / "tools"))
import torch  # noqa: E402
import train  # noqa: E402  (imports torchscale with the timm stand-in, as the fixtures do)
from perplexity_reference import logits_full  # noqa: E402

torch.set_num_threads(2)
ref_model, _ = train.load_model_dir(model_dir)  # torchscale RetNetDecoder, fp32 (bf16 weights upcast)
for mode, lg in ours.items():
    ref = logits_full(ref_model, ids, mode).float().numpy()
    err = np.abs(lg - ref).max() / np.abs(ref).max()
    print(f"{mode:9s}: retnet vs torchscale max|d|/max|ref| = {err:.2e}")

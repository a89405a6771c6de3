#!/usr/bin/env python3
"""Generate the reference fixtures used by the retnet engine tests.

Writes tests/data/<fixture>/{config.json, weights, *.npy, golden.json} and
tests/data/angles.json.  Everything is deterministic (fixed seeds, one CPU
thread).  See tools/README.md for how to set up the Python environment.

Two families:

* torchscale (fixtures_torchscale.py): goldens come from torchscale 0.3.0 (PyPI)
  ``RetNetDecoder`` run in fp32/eval on CPU.  The parallel golden uses torchscale
  HEAD's denominator (0.3.0 still has the older signed form; we patch
  ``parallel_forward`` at run time, and also store the unpatched result).  An
  independent float64 re-implementation written from the spec (working from the
  *saved files*) must agree with torchscale's logits to 1e-4 relative.
* fla (fixtures_fla.py): goldens come from an independent PyTorch
  re-implementation of flash-linear-attention's RetNet (fla itself needs
  torch>=2 + triton).  The parallel form, a token-by-token recurrence and a
  chunked form are computed separately and must agree.

angles.json comes from fixtures_angles.py; the shared helpers (logging, weight
files, JSON) are in fixtures_common.py.

timm: torchscale imports ``timm.models.layers.drop_path`` (which drags in
torchvision).  torchscale_shim.py registers a tiny stand-in module before
torchscale is imported; drop-path is never active here (drop_path_rate = 0,
eval mode).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_angles import make_angles  # noqa: E402
from fixtures_common import log  # noqa: E402
from fixtures_fla import FLA_FIXTURES, fla_fixture  # noqa: E402
from fixtures_torchscale import TORCHSCALE_VERSION, TS_FIXTURES, ts_fixture  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data"), help="output directory")
    ap.add_argument("--only", nargs="*", help="fixture names to (re)generate")
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log("torch %s, torchscale %s, numpy %s" % (torch.__version__, TORCHSCALE_VERSION, np.__version__))
    for fx in TS_FIXTURES:
        if not a.only or fx["name"] in a.only:
            ts_fixture(fx, out)
    for fx in FLA_FIXTURES:
        if not a.only or fx["name"] in a.only:
            fla_fixture(fx, out)
    if not a.only or "angles" in a.only:
        make_angles(out)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log("total size of %s: %.2f MB" % (out, total / 1e6))
    assert total < 4e6, "fixtures too large"


if __name__ == "__main__":
    main()

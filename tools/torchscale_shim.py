"""Import torchscale without timm/torchvision (shared by the tools/ scripts).

torchscale 0.3.0 imports ``timm.models.layers.drop_path``, and importing timm drags in torchvision.
``install_timm_stub()`` registers stand-in modules ``timm``, ``timm.models`` and
``timm.models.layers`` whose ``drop_path`` returns its input, so neither timm nor torchvision has to
be installed.  Call it before the first ``import torchscale...``.  Drop-path is never active in these
scripts (drop_path_rate = 0, eval mode); the stand-in raises if asked for stochastic depth.

Used by make_fixtures.py (through fixtures_torchscale.py and fixtures_angles.py), bench_reference.py
and train.py (and so perplexity_reference.py, which imports train).  This module imports nothing
but the standard library: bench_reference.py imports it before torch, whose thread pools it sizes
first.
"""

import sys
import types


def install_timm_stub():
    """Register the stand-in timm.models.layers (only drop_path is used by torchscale)."""

    def drop_path(x, drop_prob=0.0, training=False):
        if drop_prob and training:
            raise RuntimeError("drop_path stand-in: stochastic depth is not supported")
        return x

    for name in ("timm", "timm.models", "timm.models.layers"):
        if name not in sys.modules:
            sys.modules[name] = types.ModuleType(name)
    sys.modules["timm"].models = sys.modules["timm.models"]
    sys.modules["timm.models"].layers = sys.modules["timm.models.layers"]
    sys.modules["timm.models.layers"].drop_path = drop_path


def torchscale_version():
    """The installed torchscale distribution's version, or "unknown"."""
    try:
        from importlib.metadata import version

        return version("torchscale")
    except Exception:  # pragma: no cover
        return "unknown"

#!/usr/bin/env bash
# Create (or refresh) the Python environment used by tools/make_fixtures.py.
#
#   tools/setup_python.sh [VENV_DIR]
#
# VENV_DIR defaults to $RETNET_FIXTURE_VENV, else ~/.cache/retnet/fixture-venv (outside the repo).
# The venv is created with --system-site-packages on top of Debian's python3-torch / python3-numpy;
# tools/requirements.txt is installed with --no-deps.  Safe to run repeatedly.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-${RETNET_FIXTURE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/retnet/fixture-venv}}"
python="${PYTHON:-/usr/bin/python3}"

if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
    echo "error: $python cannot import torch and numpy." >&2
    echo "Install Debian's CPU packages first:  apt-get install -y python3-torch python3-numpy python3-venv" >&2
    echo "(or point PYTHON at an interpreter that has a CPU torch >= 1.13 and numpy)." >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "creating venv $venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv --system-site-packages "$venv"
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"

# Smoke test: torchscale imports with the timm stand-in that make_fixtures.py installs.
"$venv/bin/python" - <<'PY'
import sys, types
for n in ("timm", "timm.models", "timm.models.layers"):
    sys.modules.setdefault(n, types.ModuleType(n))
sys.modules["timm.models.layers"].drop_path = lambda x, *a, **k: x
import torch, numpy, safetensors
from torchscale.architecture.retnet import RetNetDecoder  # noqa: F401
print("ok: torch %s, numpy %s, safetensors %s" % (torch.__version__, numpy.__version__, safetensors.__version__))
PY
echo "venv ready: $venv"
echo "regenerate fixtures with:  $venv/bin/python $here/make_fixtures.py"

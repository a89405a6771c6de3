"""Shared fixtures of the Python package's tests (run by tests/python/run.sh, the `python_package` ctest).

The CLI these tests compare with is RETNET_CLI_PATH (set by the ctest), else build/retnet."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
BUNDLED = ROOT / "models" / "kjv-retnet"
FIXTURES = sorted(p.name for p in DATA.iterdir() if (p / "config.json").exists())
MODES = ("parallel", "recurrent", "chunkwise")


def cli_path() -> str:
    p = os.environ.get("RETNET_CLI_PATH") or str(ROOT / "build" / "retnet")
    if not os.access(p, os.X_OK):
        pytest.fail(f"the retnet CLI is needed for this test: {p} is not an executable (set RETNET_CLI_PATH)")
    return p


def run_cli(*args, check=True):
    """Runs the CLI; returns (stdout, stderr) as text."""
    r = subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"retnet {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
    return r.stdout, r.stderr


def golden(name: str) -> dict:
    return json.loads((DATA / name / "golden.json").read_text())


@pytest.fixture(scope="session")
def bundled():
    import retnet

    return retnet.Model.load(BUNDLED, device="cpu")

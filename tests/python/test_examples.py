"""examples/python run and say what they claim (compare_torch.py: its torch-less path unless torch is here)."""
import subprocess
import sys

import pytest

from conftest import ROOT

EXAMPLES = ROOT / "examples" / "python"


@pytest.mark.parametrize(
    "name, expect",
    [
        ("generate.py", "greedy :  of the LORD"),
        ("stream.py", "[stopped after 5 pieces: cancelled]"),
        ("state_roundtrip.py", "identical logits after resuming: True"),
        ("compare_torch.py", "retnet chunkwise"),
    ],
)
def test_example_runs(name, expect):
    r = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout + r.stderr

#!/usr/bin/env bash
# The README's main job: installs dependencies, builds, and runs the engine on a bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
ids=1,17,42,5,88,23,61,9
echo "retnet logits on tests/data/ts_swish_scaled, ids $ids (chunkwise prefill of 5, then recurrent decode):" >&2
./build/retnet logits -m tests/data/ts_swish_scaled --ids "$ids" --prefill 5 -o build/quickstart_logits.npy
./build/retnet info -m tests/data/ts_swish_scaled
echo "wrote build/quickstart_logits.npy ([8, 97] float32)" >&2

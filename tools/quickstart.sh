#!/usr/bin/env bash
# The README's main job: installs dependencies, builds, and generates text with the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
./build/retnet generate -m models/kjv-retnet -p "In the beginning" -n 96 "$@"

#!/usr/bin/env bash
# The README's test command: installs dependencies, builds everything, runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh "$@"
ctest --test-dir build --output-on-failure -j "$(nproc)"

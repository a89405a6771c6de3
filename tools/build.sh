#!/usr/bin/env bash
# Configures and builds retnet into ./build (Release). Extra arguments go to cmake's configure step,
# e.g. -DRETNET_CUDA=OFF. CUDA is used when nvcc is found (also at /usr/local/cuda); no GPU is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"

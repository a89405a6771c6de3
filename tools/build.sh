#!/usr/bin/env bash
# Configures and builds retnet into ./build (Release). Extra arguments go to cmake's configure step,
# e.g. -DRETNET_CUDA=OFF. CUDA is used when nvcc is found (also at /usr/local/cuda); no GPU is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
# Through ccache when installed: the Python package's build (pip install ., python/CMakeLists.txt) compiles
# the library with the same flags and paths, and then gets its objects from the cache.
launchers=()
if command -v ccache >/dev/null; then
  launchers=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launchers[@]}" "$@" >/dev/null
cmake --build build -j "$(nproc)"

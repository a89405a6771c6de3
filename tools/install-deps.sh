#!/usr/bin/env bash
# Installs the Debian 12 packages retnet needs to build and test. Idempotent; uses sudo when not root.
set -euo pipefail
# clang + libclang-rt-14-dev (libFuzzer and clang's sanitizer runtimes) for tools/fuzz.sh; llvm for
# llvm-symbolizer (readable sanitizer stacks); clang-format (14: git clang-format) for tools/check-format.sh.
# python3-venv, python3-dev: the Python package's test (tests/python/run.sh: a venv, pip install . of the
# extension); ccache: that install recompiles the library, and finds it in the cache (tools/build.sh).
# libcpp-httplib-dev: the HTTP server of `retnet serve` (tools/serve/; without it the command is a stub).
# chromium: the headless browser that tests the server's chat page (tests/serve/test_chat_page.py).
pkgs=(build-essential cmake ninja-build pkg-config libcli11-dev nlohmann-json3-dev libspdlog-dev
      libopenblas-dev libgtest-dev googletest clang libclang-rt-14-dev llvm clang-format
      python3-venv python3-dev ccache libcpp-httplib-dev chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

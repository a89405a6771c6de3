#!/usr/bin/env bash
# Installs the built project into a fresh prefix, builds examples/ against the *installed* package
# (find_package(retnet CONFIG)), and runs them. First checks that the private dependencies do not
# leak into the installed package (headers, CMake files). Usage: consumer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# Private dependencies (spdlog/fmt, nlohmann_json, CLI11, BLAS, CUDA) must not leak to consumers:
# the installed headers are retnet's own and include none of theirs ...
if [ "$(ls "$work/prefix/include")" != retnet ]; then
  echo "FAIL: headers other than include/retnet were installed: $(ls "$work/prefix/include")" >&2
  exit 1
fi
if grep -rnE '#include *[<"](spdlog|nlohmann|CLI|fmt|cblas|openblas|cuda|cublas)' "$work/prefix/include"; then
  echo "FAIL: a public header includes a third-party header" >&2
  exit 1
fi
# ... and the installed CMake package does not require them: a shared libretnet links them inside
# itself, so neither retnetConfig.cmake nor the exported targets may name them. (A static libretnet
# needs them at link time: its retnetConfig.cmake finds them with find_dependency.) The one mention
# CMake itself writes, IMPORTED_LINK_DEPENDENT_LIBRARIES (spdlog, a shared library here), is only an
# -rpath-link hint, ignored when the consumer has no such target, as the examples below have not.
cmakedir=$(dirname "$(find "$work/prefix" -name retnetConfig.cmake)")
if compgen -G "$work/prefix/lib*/libretnet.so" >/dev/null; then
  if cat "$cmakedir"/retnetConfig.cmake "$cmakedir"/retnetTargets*.cmake | grep -vE '^ *#|IMPORTED_LINK_DEPENDENT_LIBRARIES' |
       grep -nE 'find_dependency\(|spdlog|nlohmann|CLI11|fmt::|BLAS|CUDA::|Threads::'; then
    echo "FAIL: the installed package of the shared libretnet names a private dependency" >&2
    exit 1
  fi
fi
cmake -S "$src/examples" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" -j 2 >/dev/null
model="$work/prefix/share/retnet/models/kjv-retnet"
test -f "$model/model.safetensors"
out=$("$work/build/simple_generate" "$model" "In the beginning" 16 7 2>/dev/null)
[ -n "$out" ] || { echo "FAIL: simple_generate printed nothing" >&2; exit 1; }
printf 'And the LORD spake unto Moses\nBlessed are the meek\n' | "$work/build/chat" "$model" 8 >"$work/chat.txt" 2>/dev/null
[ "$(wc -l <"$work/chat.txt")" -ge 2 ] || { echo "FAIL: chat answered fewer than 2 lines" >&2; exit 1; }
doc="$model/validation.txt"
"$work/build/snapshot_resume" save "$model" "$doc" "$work/state.bin" >/dev/null
resumed=$("$work/build/snapshot_resume" resume "$model" "$work/state.bin" " And the king said")
direct=$("$work/build/snapshot_resume" direct "$model" "$doc" " And the king said")
echo "resumed: $resumed"
echo "direct:  $direct"
[ "$resumed" = "$direct" ] || { echo "FAIL: resumed decoding differs from the uninterrupted run" >&2; exit 1; }
# The installed CLI finds the installed bundled model without -m.
"$work/prefix/bin/retnet" generate -p "In the beginning" -n 4 -s 1 -q >/dev/null
echo "consumer_test: installed package builds and runs the examples"

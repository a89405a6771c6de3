#!/usr/bin/env bash
# Installs the built project into a fresh prefix, builds examples/ against the *installed* package
# (find_package(retnet CONFIG)), and runs them. Also checks that no public header includes a
# third-party header. Usage: consumer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
if grep -rnE '#include *[<"](spdlog|nlohmann|CLI|fmt)/' "$work/prefix/include/retnet"; then
  echo "FAIL: a public header includes a third-party header" >&2
  exit 1
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

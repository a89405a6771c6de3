#!/usr/bin/env bash
# The Python package's test (ctest `python_package`, label `python`): a fresh venv under the build tree,
# `pip install` of this checkout into it exactly as a user runs it (build isolation: pip fetches the
# pinned scikit-build-core and nanobind), then pytest on tests/python against the CLI of the same build.
#   bash tests/python/run.sh BUILD_DIR SOURCE_DIR [pytest args...]
# Needs python3 with venv and headers (python3-venv, python3-dev: tools/install-deps.sh) and PyPI.
# The package compiles the library again, through ccache when installed (python/CMakeLists.txt): after
# the main build with the same flags (tools/build.sh) those compiles are cache hits (docs/python.md).
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
shift 2
python=${PYTHON:-python3}
venv=$build/python-venv
pipq=(--disable-pip-version-check --no-input --quiet)
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install "${pipq[@]}" -r "$src/tests/python/requirements.txt"
t0=$(date +%s)
"$venv/bin/python" -m pip install "${pipq[@]}" "$src"
echo "python_package: pip install took $(($(date +%s) - t0)) s" >&2
# From tests/python, so that `import retnet` is the installed package (python/ is not on sys.path).
cd "$src/tests/python"
export RETNET_CLI_PATH=${RETNET_CLI_PATH:-$build/retnet}
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"

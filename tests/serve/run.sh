#!/usr/bin/env bash
# The server's test (ctest `serve_openai`, label `serve`): a venv under the build tree with the pinned
# OpenAI client (tests/serve/requirements.txt), then pytest on tests/serve against `retnet serve` of
# the same build, started by the tests on ephemeral loopback ports.
#   bash tests/serve/run.sh BUILD_DIR SOURCE_DIR [pytest args...]
# Needs python3 with venv (tools/install-deps.sh) and PyPI the first time; the venv is reused while
# requirements.txt is unchanged. test_chat_page.py also needs Debian's chromium (tools/install-deps.sh;
# RETNET_SKIP_BROWSER=1 skips its browser tests instead of failing them).
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
shift 2
python=${PYTHON:-python3}
venv=$build/serve-venv
stamp=$venv/requirements.txt
if ! cmp -s "$stamp" "$src/tests/serve/requirements.txt"; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet -r "$src/tests/serve/requirements.txt"
  cp "$src/tests/serve/requirements.txt" "$stamp"
fi
cd "$src/tests/serve"
export RETNET_CLI_PATH=${RETNET_CLI_PATH:-$build/retnet}
# Where test_chat_page.py leaves its screenshots of the chat page (chat.png, chat-phone.png).
export RETNET_SERVE_ARTIFACTS=${RETNET_SERVE_ARTIFACTS:-$build/tests/serve-artifacts}
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"

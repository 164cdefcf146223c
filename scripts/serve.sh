#!/usr/bin/env bash
# Install graphdir into ./.venv (first run only) and start it on its embedded SQLite default.
# Prints the base URL and a ready-to-use bearer token. Extra arguments go to `graphdir serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/graphdir ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e .
fi
exec .venv/bin/graphdir serve "$@"

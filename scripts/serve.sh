#!/usr/bin/env bash
# Install graphdir into ./.venv (first run only) and start it on its embedded SQLite default.
# Prints the base URL and a ready-to-use bearer token. Extra arguments go to `graphdir serve`.
# Listens on 127.0.0.1:8080 like `graphdir serve`, also with --tls (HTTPS on 8080); --port N to change it.
# The database is graphdir's default, $XDG_DATA_HOME/graphdir/graphdir.db (docs/configuration.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/graphdir ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e .
fi
exec .venv/bin/graphdir serve "$@"

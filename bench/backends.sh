#!/usr/bin/env bash
# The backends side by side: bench/backends.sh [options of python -m bench.backends]
# SQLite (1 worker) and PostgreSQL (1 and 2 workers) in one run; needs wrk (installed with apt-get when
# missing: root) and a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432, trust auth) on
# which it creates, and drops at the end, a throwaway database. Runs nothing of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
fi
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -c "import graphdir, click, psycopg" 2>/dev/null || .venv/bin/python -m pip install -q -e .
exec .venv/bin/python -m bench.backends "$@"

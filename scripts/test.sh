#!/usr/bin/env bash
# Install graphdir with its test dependencies into ./.venv and run the whole suite:
# lint (ruff), types (mypy), unit + HTTP + storage tests, the 1,000,000-member test,
# the conformance suite that drives a live `graphdir serve` with the official SDKs and the Azure CLI
# (installed into .venv-az by scripts/install-az.sh), and the same storage contract on SQLite and on a
# throwaway PostgreSQL database (scripts/pg-up.sh, dropped at the end); then the HTTP suite once more with
# the app on that PostgreSQL server (GRAPHDIR_TEST_BACKEND=postgresql, tests/http_helpers.py).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test,dev]'
# the Azure CLI for tests/test_azure_cli.py, in its own venv; a failed install only makes that test skip
./scripts/install-az.sh || echo "Azure CLI not installed (scripts/install-az.sh failed): tests/test_azure_cli.py will skip" >&2

# PostgreSQL for the storage contract suite and the PostgreSQL-backed live-server tests: a throwaway
# database for this run (scripts/pg-up.sh starts the server if it is installed but stopped), dropped
# on exit with every database the tests made from it. GRAPHDIR_SKIP_PG=1 runs without PostgreSQL
# (those tests then skip, saying why); a given GRAPHDIR_TEST_PG_URL is used as it is and left alone.
if [ -z "${GRAPHDIR_TEST_PG_URL:-}" ] && [ "${GRAPHDIR_SKIP_PG:-}" != "1" ]; then
    GRAPHDIR_TEST_PG_URL="$(./scripts/pg-up.sh)"
    export GRAPHDIR_TEST_PG_URL
    trap './scripts/pg-down.sh "$GRAPHDIR_TEST_PG_URL" || true' EXIT
    echo "== PostgreSQL: $GRAPHDIR_TEST_PG_URL (dropped at the end)"
fi

echo "== ruff"
ruff check src tests
echo "== mypy"
mypy
echo "== pytest"
set +e
if [ "$#" -eq 0 ]; then
    # the whole suite: branch coverage with the floor of [tool.coverage.report] (pyproject.toml)
    GRAPHDIR_TEST_BACKEND=sqlite python -m pytest -p no:cacheprovider --cov --cov-report=term
else
    python -m pytest -p no:cacheprovider "$@"
fi
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: failing on purpose" >&2
    exit 1
fi
# The whole suite again on PostgreSQL for the tests of the HTTP suite (tests/http_helpers.py's fixtures;
# conftest.py deselects the others, which do not depend on the backend), appending to the coverage
# (the report then covers both runs). Only for a whole-suite run with PostgreSQL; a targeted run on
# PostgreSQL: GRAPHDIR_TEST_BACKEND=postgresql ./scripts/test.sh tests/test_x.py
if [ "$#" -eq 0 ] && [ -n "${GRAPHDIR_TEST_PG_URL:-}" ]; then
    echo "== pytest: the HTTP suite on PostgreSQL (GRAPHDIR_TEST_BACKEND=postgresql)"
    set +e
    GRAPHDIR_TEST_BACKEND=postgresql python -m pytest -p no:cacheprovider -q --cov --cov-append --cov-report=term tests --ignore=tests/conformance
    pg_rc=$?
    set -e
    if [ "$pg_rc" -eq 5 ]; then
        echo "pytest collected no tests of the HTTP suite on PostgreSQL: failing on purpose" >&2
        exit 1
    fi
    if [ "$rc" -eq 0 ]; then
        rc=$pg_rc
    fi
fi
exit "$rc"  # the EXIT trap drops the run's PostgreSQL database

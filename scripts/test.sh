#!/usr/bin/env bash
# Install graphdir with its test dependencies into ./.venv and run the whole suite:
# lint (ruff), types (mypy), unit + HTTP + storage tests, the 1,000,000-member test,
# and the conformance suite that drives a live `graphdir serve` with the official SDKs and the Azure CLI
# (installed into .venv-az by scripts/install-az.sh).
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

echo "== ruff"
ruff check src tests
echo "== mypy"
mypy
echo "== pytest"
set +e
if [ "$#" -eq 0 ]; then
    # the whole suite: branch coverage with the floor of [tool.coverage.report] (pyproject.toml)
    python -m pytest -p no:cacheprovider --cov --cov-report=term
else
    python -m pytest -p no:cacheprovider "$@"
fi
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: failing on purpose" >&2
    exit 1
fi
exit "$rc"

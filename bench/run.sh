#!/usr/bin/env bash
# The benchmark's one command: bench/run.sh [--quick] [options of python -m bench.run]
# Installs what it needs (bench/setup.sh: wrk, slapd, ldap-utils, libldap-dev, py-spy; needs root for apt),
# then seeds, serves, loads and reports. Runs nothing of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/setup.sh
exec .venv/bin/python -m bench.run "$@"

#!/usr/bin/env bash
# Install the Azure CLI into its own virtual environment, ./.venv-az (git-ignored), for tests/test_azure_cli.py.
# Pinned by scripts/az-constraints.txt (azure-cli and all its dependencies), so every install is the same.
# Skipped when .venv-az already holds exactly that set. GRAPHDIR_SKIP_AZ=1 skips the install (the test then skips,
# saying why). Measured on the project's VM with a warm pip cache: ~110 s and 731 MB the first time, <1 s after.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${GRAPHDIR_SKIP_AZ:-}" = "1" ]; then
    echo "GRAPHDIR_SKIP_AZ=1: not installing the Azure CLI"
    exit 0
fi
PY="${PYTHON:-python3}"
STAMP=".venv-az/.constraints.sha256"
want="$(sha256sum scripts/az-constraints.txt | cut -d' ' -f1)"
if [ -x .venv-az/bin/az ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
rm -rf .venv-az
"$PY" -m venv .venv-az
.venv-az/bin/python -m pip install -q --upgrade pip
azure_cli="$(grep -E '^azure-cli==' scripts/az-constraints.txt)"
.venv-az/bin/python -m pip install -q "$azure_cli" -c scripts/az-constraints.txt
echo "$want" > "$STAMP"
echo "Azure CLI installed in .venv-az: $(.venv-az/bin/az version --query '"azure-cli"' -o tsv 2>/dev/null)"

#!/usr/bin/env bash
# One check script for developers and CI alike: lint → types → tests.
# Assumes the project is installed (scripts/test.sh does that). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}

echo "==> ruff"
"$PY" -m ruff check .
"$PY" -m ruff format --check .
echo "==> mypy (strict)"
"$PY" -m mypy -p shuxin.contract -p shuxin.cli -p shuxin.runtime -p shuxin.signal -p shuxin.edge -p shuxin.gateway -p shuxin.dashboard_api
echo "==> contract schema up to date"
"$PY" -m shuxin.cli contract export-schema --check
echo "==> pytest"
"$PY" -m pytest "$@"

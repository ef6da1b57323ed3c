#!/usr/bin/env bash
# Run the product on its embedded defaults: creates .venv, installs shuxin, runs `shuxin demo`.
# Needs only Python 3.11 (no broker, database or browser). Arguments go to `shuxin demo`,
# e.g. scripts/demo.sh --data ./demo-data --sessions 2. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${SHUXIN_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import shuxin.cli.main" >/dev/null 2>&1; then
  echo "==> installing shuxin (first run only)"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e . --config-settings editable_mode=strict
fi
exec "$VENV/bin/shuxin" demo "$@"

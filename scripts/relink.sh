#!/usr/bin/env bash
# Refresh the strict editable install after adding or removing a module: strict mode links
# files one by one (so mypy sees the packages), and a new file is invisible until this runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SHUXIN_VENV:-.venv}
"$VENV/bin/python" -m pip install -q "setuptools>=77,<82" wheel  # neurokit2 needs <82
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . \
  --config-settings editable_mode=strict

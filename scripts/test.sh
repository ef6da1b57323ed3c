#!/usr/bin/env bash
# The whole test suite from a fresh machine: venv, project with dev extras, the Debian servers
# the integration tests start (mosquitto, influxdb 1.x, victoria-metrics, postgresql) and
# headless chromium for the browser test, then
# lint → types → tests through scripts/check.sh. Extra arguments go to pytest (e.g. scripts/test.sh -k mqtt).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${SHUXIN_VENV:-.venv}

# --- Debian packages the integration tests need -------------------------------------------
# command → package that provides it
declare -A NEED=(
  [mosquitto]=mosquitto
  [mosquitto_sub]=mosquitto-clients
  [influxd]=influxdb
  [victoria-metrics]=victoria-metrics
  [chromium]=chromium
)
missing=()
for cmd in "${!NEED[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
    missing+=("${NEED[$cmd]}")
  fi
done
# PostgreSQL's server binaries live in a versioned folder, not on PATH.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
# A CJK font so the browser test's screenshots of the zh-CN console are readable.
if [ ! -d /usr/share/fonts/truetype/wqy ]; then
  missing+=(fonts-wqy-microhei)
fi
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages ship services; the tests start their own instances on free ports.
    for svc in mosquitto influxdb victoria-metrics postgresql; do
      systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
    done
  else
    echo "!! missing Debian packages: ${missing[*]}"
    echo "!! install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    echo "!! (integration tests will be skipped outside CI and fail under CI=true)"
  fi
fi

# --- Python environment ------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
echo "==> installing shuxin with dev extras (editable, strict)"
"$VENV/bin/python" -m pip install -q -e ".[dev]" --config-settings editable_mode=strict
# Real recordings for the signal validation tests ship inside these packages; their declared
# dependencies (dask, xarray, nilearn, ...) are not needed to read the data files.
echo "==> installing validation data packages (no dependencies)"
"$VENV/bin/python" -m pip install -q --no-deps "pyphysio>=3" "biosignalsnotebooks>=0.6"

# --- lint → types → tests ---------------------------------------------------------------
exec env PATH="$PWD/$VENV/bin:$PATH" scripts/check.sh "$@"

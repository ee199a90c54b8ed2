#!/usr/bin/env bash
# Set up and run every check: ruff, mypy, then the whole pytest suite (exit code 5, no tests, fails).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests need: venv for .venv and checkov's venv, npm for the web app's bun, and the
# browser tier's Chromium (never a browser download). Installed when missing and run as root.
missing=()
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
bash scripts/setup.sh
export PYTHONDONTWRITEBYTECODE=1
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy gpu_worker edge_api frontend/ocr_web scripts
echo "== infra"
bash scripts/check_infra.sh
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"

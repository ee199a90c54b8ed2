#!/usr/bin/env bash
# Set up and run every check: ruff, mypy, then the whole pytest suite (exit code 5, no tests, fails).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tier drives Debian's Chromium (never a browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: sudo apt-get install chromium" >&2
    exit 1
  fi
fi
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

#!/usr/bin/env bash
# Create .venv and install the project with the extras a local machine needs (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-worker-cpu,edge,dev}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)-${EXTRAS//,/_}
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e ".[${EXTRAS}]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

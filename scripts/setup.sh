#!/usr/bin/env bash
# Create .venv with every deployable's extras and the web app's bun (from the npm registry). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-worker-cpu,edge,frontend,dev}
BUN_VERSION=1.4.5
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${EXTRAS//,/_}
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e ".[${EXTRAS}]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Reflex would download bun from its own site, which these machines cannot reach: take it from npm.
if [[ ",$EXTRAS," == *",frontend,"* ]] && [ ! -x .tools/node_modules/.bin/bun ]; then
  command -v npm >/dev/null || { echo "npm is needed for the web app's bun (install Node.js)" >&2; exit 1; }
  npm install --silent --no-audit --no-fund --prefix .tools "bun@${BUN_VERSION}"
fi

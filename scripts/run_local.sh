#!/usr/bin/env bash
# The main job: set up what is missing, then start the local stack (local S3, worker, edge, web app).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/local_stack.py "$@"

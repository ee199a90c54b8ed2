#!/usr/bin/env bash
# The main job on one machine: set up, then OCR the shipped sample page (CPU engine unless CUDA is present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
IMAGE=${1:-samples/invoice.png}
shift || true
exec .venv/bin/python -m gpu_worker.cli "$IMAGE" --task markdown --annotated out-annotated.png "$@"

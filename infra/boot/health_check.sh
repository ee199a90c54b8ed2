#!/bin/bash
# On the instance: is the service up, is the model loaded, how much GPU memory is in use. Exit 0 when healthy.
PORT=$(grep -E '^PORT=' /etc/ocr-worker.env 2>/dev/null | cut -d= -f2)
PORT=${PORT:-8000}
status=0
if systemctl is-active --quiet ocr-worker; then echo "service: active"; else echo "service: NOT active"; status=1; fi
if curl -fsS --max-time 3 "http://127.0.0.1:$PORT/livez" >/dev/null; then echo "process: answering"; else echo "process: not answering"; status=1; fi
health=$(curl -sS --max-time 3 "http://127.0.0.1:$PORT/health" || true)
echo "model: ${health:-no answer}"
# degraded (a dependency such as S3 is down) still serves: only a missing or not-ready model fails here
echo "$health" | grep -Eq '"status":"(ok|degraded)"' || status=1
nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv,noheader \
  | sed 's/^/gpu: /' || { echo "gpu: nvidia-smi failed"; status=1; }
exit $status

"""Edge benchmark: cold import of the Lambda handler module, and the edge's warm per-request overhead.

    .venv/bin/python -m bench.edge_overhead [--samples 64] [--s3-hang-only]

Cold: `import edge_api.handler` in fresh interpreters (median of 5), and what Powertools' Tracer would
add (aws-xray-sdk; only measured when it is installed). Warm: the same request sent to the worker
directly, to the edge under uvicorn, and through the Lambda handler in-process, against one worker
(tiny deepseek model, mode tiny, few tokens, so the engine is fast and the overhead shows).

S3 hang: the edge (`python -m edge_api`) with its S3 calls through a TCP proxy in front of the local S3 API.
`GET /v1/results/{id}` latency while S3 answers, while it hangs (the proxy accepts and stays silent), while it
refuses, and after it recovers; and `POST /v1/uploads` while 16 lookups hang. Before/after of the cold import:
bench/edge_cold_import.py.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.utils.apigw import LambdaContext, rest_event
from tests.utils.documents import render_document
from tests.utils.requests import chat_body, data_url
from tests.utils.servers import EdgeProcess, LocalS3, WorkerProcess, free_port
from tests.utils.tcp_proxy import TcpProxy
from tests.utils.tiny_deepseek import build_tiny_model

KEY = "sk-bench-key"


def import_seconds(statement: str, runs: int = 5) -> float:
    """Median wall time of `statement` in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-west-2", "WORKER_URL": "http://worker"}
    samples = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                    check=True).stdout) for _ in range(runs)]  # fmt: skip
    return statistics.median(samples)


def timed(call, samples: int) -> list[float]:
    """Latencies of `samples` sequential calls."""
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def summary(name: str, latencies: list[float], baseline: list[float] | None, against: str = "direct") -> str:
    """p50/p99 and the ratio to the baseline."""
    ordered = sorted(latencies)
    p50, p99 = statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000
    text = f"{name:<28} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
    if baseline:
        b50 = statistics.median(baseline) * 1000
        text += f"  ({p50 / b50:.2f}x {against}, {p50 - b50:+.1f} ms)"
    return text


def s3_hang(samples: int) -> None:
    """Result lookups and uploads while S3 answers, hangs, refuses and recovers; statuses and latencies."""
    import datetime as dt
    import threading

    from edge_api.keys import key_id

    s3 = LocalS3().start()
    proxy = TcpProxy(("127.0.0.1", s3.port)).start()
    edge = EdgeProcess(s3, f"http://127.0.0.1:{free_port()}", KEY, S3_ENDPOINT_URL=proxy.url).start()
    day = dt.datetime.now(dt.UTC)
    document = {"owner": key_id(KEY), "status": 200, "body": {"id": "req-bench", "object": "chat.completion"}}
    s3.client().put_object(Bucket=s3.bucket, Key=f"results/{day:%Y/%m/%d}/req-bench/result.json",
                           Body=json.dumps(document).encode())  # fmt: skip
    headers = {"x-api-key": KEY}
    try:
        with httpx.Client(timeout=60, headers=headers) as client:
            statuses: list[int] = []

            def lookup() -> None:
                statuses.append(client.get(edge.url + "/v1/results/req-bench").status_code)

            def upload() -> None:
                body = {"content_type": "image/png", "size": 100}
                statuses.append(client.post(edge.url + "/v1/uploads", json=body).status_code)

            def phase(name: str, call, n: int, baseline: list[float] | None) -> list[float]:
                statuses.clear()
                latencies = timed(call, n)
                print(
                    summary(name, latencies, baseline, "S3 answering") + f"  statuses {sorted(set(statuses))}"
                )
                return latencies

            timed(lookup, 3)
            healthy = phase("results, S3 answering", lookup, samples, None)
            proxy.pause()
            phase("results, S3 hanging", lookup, max(samples // 8, 3), healthy)
            hung = [threading.Thread(target=lambda: httpx.get(edge.url + "/v1/results/req-bench", headers=headers,
                                                              timeout=60)) for _ in range(16)]  # fmt: skip
            for thread in hung:
                thread.start()
            phase("uploads, 16 lookups hung", upload, max(samples // 8, 3), healthy)
            for thread in hung:
                thread.join()
            proxy.cut()
            phase("results, S3 refusing", lookup, max(samples // 8, 3), healthy)
            proxy.resume()
            phase("results, S3 recovered", lookup, samples, healthy)
    finally:
        edge.stop()
        proxy.stop()
        s3.stop()


def main() -> None:
    """Print cold import times, warm overheads and the S3-hang figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--s3-hang-only", action="store_true", help="only the S3 hang scenario")
    args = parser.parse_args()
    s3_hang(args.samples)
    if args.s3_hang_only:
        return
    cold = import_seconds("import edge_api.handler")
    print(f"cold import of edge_api.handler: {cold * 1000:.0f} ms (median of 5 fresh interpreters)")
    if importlib.util.find_spec("aws_xray_sdk"):
        tracer = import_seconds("from aws_lambda_powertools import Tracer; Tracer(service='edge-api')")
        print(f"Powertools Tracer + aws-xray-sdk would add: {tracer * 1000:.0f} ms to every cold start")
    else:
        print("aws-xray-sdk not installed: Tracer cost not measured")

    model_dir = build_tiny_model(Path(tempfile.mkdtemp()))
    s3 = LocalS3().start()
    worker = WorkerProcess(
        s3, OCR_ENGINE="deepseek", DEEPSEEK_MODEL=str(model_dir), MAX_NEW_TOKENS="4"
    ).start()
    edge = EdgeProcess(s3, worker.url, KEY).start()
    body = chat_body(data_url(render_document(["Edge bench"], width=500).png()), task="ocr", mode="tiny")
    for name, value in {"WORKER_URL": worker.url, "RESULTS_BUCKET": s3.bucket, "S3_ENDPOINT_URL": s3.endpoint,
                        "EMIT_METRICS": "false", "POWERTOOLS_LOG_LEVEL": "WARNING"}.items():  # fmt: skip
        os.environ[name] = value
    handler = importlib.import_module("edge_api.handler").handler
    event = rest_event("POST", "/v1/chat/completions", json.dumps(body))
    try:
        with httpx.Client(timeout=60) as client:

            def direct() -> None:
                client.post(worker.url + "/v1/chat/completions", json=body).raise_for_status()

            def via_edge() -> None:
                client.post(
                    edge.url + "/v1/chat/completions", json=body, headers={"x-api-key": KEY}
                ).raise_for_status()

            def via_lambda() -> None:
                assert handler(event, LambdaContext())["statusCode"] == 200

            for call in (direct, via_edge, via_lambda):
                timed(call, 5)  # warm
            baseline = timed(direct, args.samples)
            print(summary("worker direct", baseline, None))
            print(summary("edge (uvicorn)", timed(via_edge, args.samples), baseline))
            print(summary("edge (Lambda handler)", timed(via_lambda, args.samples), baseline))
    finally:
        edge.stop()
        worker.stop()
        s3.stop()


if __name__ == "__main__":
    main()

"""Fault benchmark: the worker under an S3 hang (a TCP proxy that accepts and stays silent), then recovery.

A real worker process (deepseek engine on the tiny random model, so the engine is fast and the fault
shows) writes through a TCP proxy to a local S3 API. `--clients` callers send pages for the length of
the hang (`--hang-s`), a share of them (`--upload-share`) by `s3://` upload reference, which needs S3
to read. Meanwhile `/health` is polled. Printed: how many requests were answered, by status, and how
many within the worker's timeout; /health latency during the hang; after S3 resumes, how many of the
results promised (200s, and 504s that said "will be stored") landed in S3, and how long that took.

    .venv/bin/python -m bench.s3_fault [--hang-s 30 --clients 32 --timeout-s 20]
    .venv/bin/python -m bench.s3_fault --worker-root /path/to/an/older/checkout   # the same run, older code
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.utils.documents import render_document, to_bytes
from tests.utils.requests import chat_body, data_url
from tests.utils.servers import EDGE_HEADERS, LocalS3, WorkerProcess
from tests.utils.tcp_proxy import TcpProxy
from tests.utils.tiny_deepseek import build_tiny_model


async def client_loop(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], name: str, owner: str, until: float,
    outcomes: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Send requests one after another until `until` (monotonic); record each outcome."""
    n = 0
    while time.monotonic() < until:
        n += 1
        request_id = f"{name}-{n}"
        started = time.monotonic()
        try:
            response = await client.post(url, json=body, headers={"X-Request-ID": request_id, "X-OCR-Owner": owner,
                                                                   **EDGE_HEADERS})  # fmt: skip
            status, text = response.status_code, response.text
            retry_after = float(response.headers.get("retry-after", 0) or 0)
        except httpx.HTTPError as exc:
            status, text, retry_after = 0, type(exc).__name__, 0.0
        outcomes.append({"id": request_id, "kind": name.split("-")[0], "status": status,
                         "seconds": time.monotonic() - started, "text": text})  # fmt: skip
        if status in (429, 502, 503) and retry_after:  # a polite client waits as told
            await asyncio.sleep(min(retry_after, max(until - time.monotonic(), 0)))


async def health_loop(
    url: str, until: float, latencies: list[float], reports: collections.Counter[str]
) -> None:
    """GET /health every 0.5 s until `until`; keep the latency and the status it reported."""
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                response = await client.get(url)
                reports[f"{response.status_code} {response.json().get('status')}"] += 1
            except httpx.HTTPError as exc:
                reports[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.5)


def promised(outcome: dict[str, Any]) -> bool:
    """Did this answer promise a stored result?"""
    return outcome["status"] == 200 or (outcome["status"] == 504 and "will be stored" in outcome["text"])


def main() -> None:
    """Run the fault once and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--hang-s", type=float, default=30)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--timeout-s", type=float, default=20, help="the worker's REQUEST_TIMEOUT_S")
    parser.add_argument(
        "--upload-share", type=float, default=0.25, help="share of clients using s3:// uploads"
    )
    parser.add_argument("--land-wait-s", type=float, default=60, help="how long to wait for results to land")
    parser.add_argument("--worker-root", default=None, help="run the worker from another checkout")
    args = parser.parse_args()

    model_dir = build_tiny_model(Path(tempfile.mkdtemp()))
    page = render_document(["S3 fault page"], width=600)
    s3 = LocalS3().start()
    proxy = TcpProxy(("127.0.0.1", s3.port)).start()
    s3.client().put_object(
        Bucket=s3.bucket, Key="uploads/bench-owner/page.png", Body=to_bytes(page.image, "PNG")
    )
    worker = WorkerProcess(s3, OCR_ENGINE="deepseek", DEEPSEEK_MODEL=str(model_dir), MAX_NEW_TOKENS="4",
                           REQUEST_TIMEOUT_S=str(args.timeout_s), MAX_QUEUE="256", SPOOL_DIR=tempfile.mkdtemp(),
                           S3_ENDPOINT_URL=proxy.url, HF_HUB_OFFLINE="1")  # fmt: skip
    if args.worker_root:
        worker.service.cwd = Path(args.worker_root)
    worker.start()
    inline = chat_body(data_url(page.png()), task="ocr", mode="tiny")
    upload = chat_body("s3://ocr-results/uploads/bench-owner/page.png", task="ocr", mode="tiny")
    url = worker.url + "/v1/chat/completions"
    outcomes: list[dict[str, Any]] = []
    health_s: list[float] = []
    health_reports: collections.Counter[str] = collections.Counter()
    try:
        with httpx.Client(timeout=60) as warm:
            for _ in range(3):
                warm.post(url, json=inline).raise_for_status()

        async def run() -> None:
            uploads = round(args.clients * args.upload_share)
            limits = httpx.Limits(max_connections=args.clients + 4)
            async with httpx.AsyncClient(timeout=args.timeout_s * 3 + 60, limits=limits) as client:
                proxy.pause()
                until = time.monotonic() + args.hang_s
                callers = [
                    client_loop(client, url, upload if i < uploads else inline,
                                f"{'upload' if i < uploads else 'inline'}-{i}", "bench-owner", until, outcomes)
                    for i in range(args.clients)
                ]  # fmt: skip
                await asyncio.gather(
                    health_loop(worker.url + "/health", until, health_s, health_reports), *callers
                )

        started = time.monotonic()
        asyncio.run(run())
        hang_wall = time.monotonic() - started
        proxy.resume()
        resumed = time.monotonic()
        wanted = {o["id"] for o in outcomes if promised(o)}
        landed: set[str] = set()
        while time.monotonic() - resumed < args.land_wait_s:
            keys = s3.object_keys("results/")
            landed = {k.split("/")[-2] for k in keys if k.endswith("/result.json")} & wanted
            if landed == wanted:
                break
            time.sleep(0.5)
        land_s = time.monotonic() - resumed
        spool = httpx.get(worker.url + "/metrics").text
    finally:
        proxy.resume()
        worker.stop()
        proxy.stop()
        s3.stop()

    print(f"S3 hang of {args.hang_s:g} s (requests kept coming for {hang_wall:.1f} s), {args.clients} clients "
          f"({round(args.clients * args.upload_share)} by s3:// upload), worker timeout {args.timeout_s:g} s, "
          f"tiny deepseek on CPU, code: {args.worker_root or 'this checkout'}")  # fmt: skip
    for kind in ("inline", "upload"):
        mine = [o for o in outcomes if o["kind"] == kind]
        if not mine:
            continue
        statuses = collections.Counter(o["status"] for o in mine)
        within = sum(1 for o in mine if o["status"] not in (0, 504) and o["seconds"] <= args.timeout_s + 1)
        p50 = statistics.median(o["seconds"] for o in mine)
        slowest = max(o["seconds"] for o in mine)
        print(f"  {kind:>6}: {len(mine)} requests, statuses {dict(sorted(statuses.items()))}, "
              f"{within} answered (not 504) within the timeout; latency p50 {p50:.2f} s, max {slowest:.2f} s")  # fmt: skip
    health_sorted = sorted(health_s)
    if health_sorted:
        p99 = health_sorted[min(len(health_sorted) - 1, int(len(health_sorted) * 0.99))]
        print(f"  /health during the hang: {len(health_sorted)} calls, p50 {statistics.median(health_sorted) * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms, max {health_sorted[-1] * 1000:.1f} ms; reported {dict(health_reports)}")  # fmt: skip
    print(f"  results promised (200, or 504 'will be stored'): {len(wanted)}; landed in S3 after recovery: "
          f"{len(landed)} ({len(landed) / max(len(wanted), 1):.0%}) within {land_s:.1f} s of S3 resuming")  # fmt: skip
    for line in spool.splitlines():
        if line.startswith(("ocr_spool_written_total", "ocr_spool_dropped", "ocr_results_lost_total")):
            print(f"  {line}")


if __name__ == "__main__":
    main()

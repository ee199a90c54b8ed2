"""Jobs vs inline, measured in the same run on real servers on loopback (moto's server for S3, SQS, DynamoDB).

    .venv/bin/python -m bench.jobs [--pages 50] [--backlog 200] [--probes 12] [--engine rapidocr]

1. Throughput: a PDF of N pages as one job (upload, POST /v1/jobs, poll until finished) vs the same pages
   sent inline one by one (PNG pages on /v1/chat/completions, sequentially, as a simple client would).
   Printed as pages/s and the ratio.
2. Priority: p50 (and p90) latency of single-page inline requests on an idle worker, then again while a
   job backlog of M pages waits in the queue (the consumer pulls only when the batch loop has room).
Figures depend on the machine (2 shared cores here); the ratios are the point.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time

import httpx

from tests.jobs.conftest import KEYS, EdgeCaller, JobsAws
from tests.utils import pdfs
from tests.utils.documents import to_bytes
from tests.utils.requests import data_url, image_message
from tests.utils.servers import EdgeProcess, LocalS3, WorkerProcess


def inline_page(caller: EdgeCaller, png: bytes) -> float:
    """One inline page through the edge; its latency in seconds."""
    started = time.perf_counter()
    answer = httpx.post(caller.url + "/v1/chat/completions", headers=caller.headers, timeout=300,
                        json={"model": "deepseek-ocr", "task": "ocr", "messages": image_message(data_url(png))})  # fmt: skip
    answer.raise_for_status()
    return time.perf_counter() - started


def page_pngs(count: int) -> list[bytes]:
    """The PDF's pages as the PNGs a client would send inline (rendered the way the worker renders them)."""
    from gpu_worker.documents import render_pdf

    data, _ = pdfs.text_document(count)
    pages = render_pdf(data, max_bytes=2**30, max_pages=count, dpi=144, max_pixels=40_000_000)
    return [to_bytes(page.image, "PNG") for page in pages]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--backlog", type=int, default=200)
    parser.add_argument("--probes", type=int, default=12)
    parser.add_argument("--engine", default="rapidocr")
    parser.add_argument("--batch", default="4")
    args = parser.parse_args()
    # SIGTERM (a timeout) stops the servers too: they run in their own process groups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    s3 = LocalS3().start()
    aws = JobsAws(s3)
    worker = WorkerProcess(s3, OCR_ENGINE=args.engine, MAX_BATCH_SIZE=args.batch, MAX_QUEUE="256",
                           **aws.worker_env(JOBS_VISIBILITY_S="300", JOBS_MAX_RECEIVE="5")).start(timeout=600)  # fmt: skip
    edge = EdgeProcess(s3, worker.url, ",".join(KEYS), **aws.edge_env()).start()
    caller = EdgeCaller(edge.url, KEYS[0])
    try:
        pngs = page_pngs(args.pages)
        inline_page(caller, pngs[0])  # warm-up

        started = time.perf_counter()
        for png in pngs:
            inline_page(caller, png)
        inline_s = time.perf_counter() - started

        data, _ = pdfs.text_document(args.pages)
        file = caller.upload(data)
        started = time.perf_counter()
        job = caller.create({"file": file, "task": "ocr"}).json()
        final = caller.wait(job["id"], timeout=3600)
        job_s = time.perf_counter() - started
        assert final["status"] == "succeeded", final
        print(f"{args.pages} pages, engine {args.engine}, batch {args.batch}")
        print(f"  inline one by one : {inline_s:7.1f} s  {args.pages / inline_s:6.2f} pages/s")
        print(f"  as one job        : {job_s:7.1f} s  {args.pages / job_s:6.2f} pages/s"
              f"  ({inline_s / job_s:.2f}x inline)")  # fmt: skip

        probe = pngs[0]
        idle = [inline_page(caller, probe) for _ in range(args.probes)]
        backlog, _ = pdfs.text_document(args.backlog)
        busy_job = caller.create({"file": caller.upload(backlog), "task": "ocr"}).json()
        while caller.get(busy_job["id"]).json()["pages_done"] < 1:  # the backlog is being worked on
            time.sleep(0.5)
        loaded = [inline_page(caller, probe) for _ in range(args.probes)]
        status = caller.get(busy_job["id"]).json()
        caller.cancel(busy_job["id"])
        p50_idle, p50_loaded = statistics.median(idle), statistics.median(loaded)
        print(f"inline latency, {args.probes} single-page requests each")
        print(
            f"  idle worker              : p50 {p50_idle * 1000:7.0f} ms  p90 {percentile(idle, 90) * 1000:7.0f} ms"
        )
        print(f"  {args.backlog}-page job backlog   : p50 {p50_loaded * 1000:7.0f} ms  "
              f"p90 {percentile(loaded, 90) * 1000:7.0f} ms  ({p50_loaded / p50_idle:.2f}x idle; "
              f"{status['pages_done']} backlog pages done meanwhile)")  # fmt: skip
    finally:
        edge.stop()
        worker.stop()
        s3.stop()


if __name__ == "__main__":
    main()

"""Worker benchmark: the HTTP path (validation, decode, queue, S3 writes) over calling the engine directly.

Runs the deepseek engine on the tiny random model (mode tiny, a few tokens: the engine is fast, so the
HTTP path's own cost shows): direct `engine.run` vs `POST /v1/chat/completions` to a real worker
process (with a local S3 API), at 1 and 32 concurrent callers; then the worker's RSS before and
after 1,000 more requests.

At one caller the serving overhead is measured two ways: each request's latency minus the engine time
the worker reports for its batch (`ocr.timings_ms.inference`: preprocessing, generation, decoding), and
HTTP p50 minus direct `engine.run` p50 with the two interleaved request by request on an idle worker (each
request's result write lands before the next measurement; both see the same machine load; this one also
works for an older checkout). `GET /livez` gives the HTTP floor. The local S3 API runs in a process of its
own, as S3 is elsewhere in production: in this process its request handling would take the GIL from the
measuring client.

    .venv/bin/python -m bench.worker_http [--requests 1000] [--compare-root /path/to/an/older/checkout]

With `--compare-root`, the same HTTP measurements also run against a worker started from that checkout
(e.g. `git archive <commit> | tar -x -C /tmp/before`), in the same run, so before/after share the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from gpu_worker.engines.base import Engine
from gpu_worker.engines.deepseek import DeepseekEngine
from gpu_worker.protocol import TASK_PROMPTS
from gpu_worker.types import OcrRequest
from tests.utils.documents import render_document
from tests.utils.engines import ScriptedEngine
from tests.utils.requests import chat_body, data_url
from tests.utils.servers import LocalS3, LocalS3Process, WorkerProcess
from tests.utils.tiny_deepseek import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def rss_mb(pid: int) -> float:
    """Resident memory of a process."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def http_run(
    url: str, body: dict, total: int, concurrency: int
) -> tuple[list[float], list[float], float]:
    """Latencies of `total` requests at `concurrency`, each one's overhead (latency - its engine time), wall time.

    The overhead is measured per request against the engine time the worker reports (`ocr.timings_ms.inference`),
    so it does not drift with the machine's load the way a separate direct measurement would.
    """
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    overheads: list[float] = []
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one() -> None:
            async with semaphore:
                started = time.perf_counter()
                response = await client.post(url, json=body)
                response.raise_for_status()
                latency = time.perf_counter() - started
                latencies.append(latency)
                overheads.append(latency - response.json()["ocr"]["timings_ms"]["inference"] / 1000)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        return latencies, overheads, time.perf_counter() - started


class BareClient:
    """One keep-alive HTTP/1.1 connection and no client library: what the worker adds, without the client's own
    cost (httpx spends about a millisecond of Python on each request on a small machine)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.netloc
        self.sock = socket.create_connection((parts.hostname, parts.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post_json(self, path: str, payload: bytes) -> tuple[int, bytes]:
        """(status, body) of one POST; the worker answers JSON with a Content-Length."""
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n")  # fmt: skip
        self.sock.sendall(head.encode() + payload)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        head_bytes, _, body = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines[1:])
        }
        while len(body) < int(headers["content-length"]):
            body += self._recv()
        return int(lines[0].split()[1]), body

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the worker closed the connection mid-answer")
        return data

    def close(self) -> None:
        self.sock.close()


def interleaved(url: str, body: dict, engine: Engine, request: OcrRequest, samples: int, s3: LocalS3) -> None:
    """One caller on an idle worker: a direct engine.run, then one HTTP request (httpx, then a bare socket), in
    turn; p50 of each and the differences. Each HTTP request's result write (after its answer) lands before the
    next measurement starts."""
    direct, http, bare, floor = [], [], [], []
    payload = json.dumps(body).encode()
    raw = BareClient(url)
    with httpx.Client(timeout=300) as client:
        for _ in range(samples):
            started = time.perf_counter()
            engine.run([request])
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = client.post(url + "/v1/chat/completions", json=body)
            http.append(time.perf_counter() - started)
            response.raise_for_status()
            s3.wait_for_object(response.json()["ocr"]["result"]["key"])  # the worker is idle again
            started = time.perf_counter()
            status, answer = raw.post_json("/v1/chat/completions", payload)
            bare.append(time.perf_counter() - started)
            assert status == 200, answer[:300]
            s3.wait_for_object(json.loads(answer)["ocr"]["result"]["key"])
            started = time.perf_counter()
            client.get(url + "/livez").raise_for_status()
            floor.append(time.perf_counter() - started)
    raw.close()
    d50, h50, b50, f50 = (percentiles(x)[0] for x in (direct, http, bare, floor))
    print(f"  1 caller, interleaved with direct engine.run: HTTP p50 {h50:.1f} ms vs direct p50 {d50:.1f} ms "
          f"({h50 - d50:+.1f} ms); HTTP floor (GET /livez) p50 {f50:.1f} ms")  # fmt: skip
    print(
        f"  the same with a bare client (one socket, no client library): p50 {b50:.1f} ms ({b50 - d50:+.1f} ms)"
    )


def paced(label: str, root: Path, s3: LocalS3, body: dict, request: OcrRequest, samples: int) -> None:
    """The serving path alone: the worker from `root` with the tests' scripted engine, which waits 50 ms without
    the GIL (bench/paced_worker.py)."""
    engine = ScriptedEngine(delay=0.05)
    worker = WorkerProcess(s3, PACED_ENGINE_MS="50", MAX_QUEUE="256", MAX_BATCH_SIZE="8")
    worker.service.argv = [sys.executable, str(ROOT / "bench" / "paced_worker.py")]
    worker.service.cwd = root
    worker.start()
    try:
        print(f"worker from {label}, engine paced at 50 ms (GIL released, as a device wait):")
        asyncio.run(http_run(worker.url + "/v1/chat/completions", body, 16, 1))  # warm
        latencies, _, _ = asyncio.run(http_run(worker.url + "/v1/chat/completions", body, samples, 1))
        direct = []
        for _ in range(16):
            started = time.perf_counter()
            engine.run([request])
            direct.append(time.perf_counter() - started)
        (h50, h99), (d50, _) = percentiles(latencies), percentiles(direct)
        print(f"  HTTP at  1 concurrent, back to back: p50 {h50 - d50:+.1f} ms, p99 {h99 - d50:+.1f} ms over the "
              f"engine's {d50:.1f} ms")  # fmt: skip
        interleaved(worker.url, body, engine, request, samples, s3)
    finally:
        worker.stop()


def main() -> None:
    """Print the figures and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--compare-root", default=None, help="also measure a worker run from this checkout")
    parser.add_argument(
        "--paced-only", action="store_true", help="only the serving path with the paced engine"
    )
    args = parser.parse_args()
    model_dir = build_tiny_model(Path(tempfile.mkdtemp()))
    document = render_document(["Benchmark page 42"], width=600)
    engine = DeepseekEngine(str(model_dir), max_new_tokens=args.tokens)
    engine.load()
    request = OcrRequest("bench", document.image, "ocr", "tiny", TASK_PROMPTS["ocr"])
    direct = []
    for _ in range(args.samples):
        started = time.perf_counter()
        engine.run([request])
        direct.append(time.perf_counter() - started)
    d50, d99 = percentiles(direct)
    direct_rps = len(direct) / sum(direct)

    s3 = LocalS3Process().start()  # its own process: moto must not share the GIL with the measuring client
    body = chat_body(data_url(document.png()), task="ocr", mode="tiny")
    print(f"page {document.image.size}, tiny deepseek on CPU, mode tiny, {args.tokens} tokens; direct engine.run: "
          f"p50 {d50:.1f} ms, p99 {d99:.1f} ms, {direct_rps:.1f} pages/s")  # fmt: skip
    try:
        roots = [("this checkout", None)] + (
            [(args.compare_root, args.compare_root)] if args.compare_root else []
        )
        for label, root in [] if args.paced_only else roots:
            worker = WorkerProcess(s3, OCR_ENGINE="deepseek", DEEPSEEK_MODEL=str(model_dir), MAX_NEW_TOKENS=str(args.tokens),
                                   MAX_QUEUE="256", MAX_BATCH_SIZE="8", HF_HUB_OFFLINE="1")  # fmt: skip
            if root is not None:
                worker.service.cwd = Path(root)
            worker.start()
            try:
                measure(label, worker, body, args, d50, d99, direct_rps)
                interleaved(worker.url, body, engine, request, args.samples, s3)
            finally:
                worker.stop()
        for label, root in roots:
            paced(label, Path(root or ROOT), s3, body, request, args.samples)
    finally:
        s3.stop()


def measure(label: str, worker: WorkerProcess, body: dict, args: argparse.Namespace, d50: float, d99: float,
            direct_rps: float) -> None:  # fmt: skip
    """The HTTP figures of one worker, as ratios to the direct engine."""
    url = worker.url + "/v1/chat/completions"
    asyncio.run(http_run(url, body, 16, 4))  # warm
    print(f"worker from {label}:")
    for concurrency in (1, 32):
        latencies, overheads, wall = asyncio.run(http_run(url, body, args.samples, concurrency))
        h50, h99 = percentiles(latencies)
        o50, o99 = percentiles(overheads)
        print(f"  HTTP at {concurrency:>2} concurrent: p50 {h50:.1f} ms ({h50 / d50:.2f}x direct), p99 {h99:.1f} ms, "
              f"{len(latencies) / wall:.1f} req/s ({len(latencies) / wall / direct_rps:.2f}x); over its own engine "
              f"time: p50 {o50:+.1f} ms, p99 {o99:+.1f} ms")  # fmt: skip
    values = {}
    for line in httpx.get(worker.url + "/metrics").text.splitlines():
        if line.startswith(("ocr_batch_size_sum ", "ocr_batch_size_count ")):
            values[line.split()[0]] = float(line.split()[1])
    if values.get("ocr_batch_size_count"):
        print(
            f"  mean batch size over the run: {values['ocr_batch_size_sum'] / values['ocr_batch_size_count']:.2f}"
        )
    if args.requests:
        assert worker.process is not None
        before = rss_mb(worker.process.pid)
        _, _, wall = asyncio.run(http_run(url, body, args.requests, 16))
        after = rss_mb(worker.process.pid)
        print(f"  RSS before {before:.0f} MB, after {args.requests} requests {after:.0f} MB "
              f"({after - before:+.0f} MB, {args.requests / wall:.1f} req/s)")  # fmt: skip


if __name__ == "__main__":
    main()

"""Real servers on loopback for integration tests: a local S3 API, the worker as a process or a thread."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-west-2",
    "AWS_REGION": "us-west-2",
}


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(
    url: str, timeout: float = 90.0, status: int = 200, process: subprocess.Popen | None = None
) -> None:
    """Poll until `url` answers `status`, or fail with what the process printed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == status:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer {status} within {timeout} s")


class LocalS3:
    """moto's S3 server on a loopback port, with one bucket."""

    def __init__(self, bucket: str = "ocr-results") -> None:
        from moto.server import ThreadedMotoServer

        for key, value in AWS_ENV.items():
            os.environ.setdefault(key, value)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> LocalS3:
        self._server.start()
        self.client().create_bucket(
            Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-west-2")

    def object_keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def wait_for_key(self, suffix: str, timeout: float = 30.0) -> str:
        """The first key ending with `suffix`, polling until it appears."""
        deadline = time.monotonic() + timeout
        while True:
            found = [k for k in self.object_keys() if k.endswith(suffix)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no object ending with {suffix} within {timeout} s")
            time.sleep(0.1)


class ServiceProcess:
    """`python -m MODULE` as a real process on a free port, ready once `health_path` answers 200."""

    module = ""
    health_path = "/health"

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **AWS_ENV, "PORT": str(self.port), **env}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        self.process = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, env=self.env)
        wait_http(self.url + self.health_path, timeout, process=self.process)
        return self

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class WorkerProcess(ServiceProcess):
    """The worker (rapidocr unless told otherwise), writing to the local S3 API."""

    module = "gpu_worker"

    def __init__(self, s3: LocalS3, **env: str) -> None:
        defaults = {"OCR_ENGINE": "rapidocr", "RESULTS_BUCKET": s3.bucket, "S3_ENDPOINT_URL": s3.endpoint,
                    "LOG_LEVEL": "WARNING"}  # fmt: skip
        super().__init__(**{**defaults, **env})


class EdgeProcess(ServiceProcess):
    """The edge under uvicorn (`python -m edge_api`), forwarding to `worker_url`."""

    module = "edge_api"

    def __init__(self, s3: LocalS3, worker_url: str, keys: str, **env: str) -> None:
        defaults = {"WORKER_URL": worker_url, "LOCAL_API_KEYS": keys, "RESULTS_BUCKET": s3.bucket,
                    "S3_ENDPOINT_URL": s3.endpoint, "POWERTOOLS_LOG_LEVEL": "WARNING"}  # fmt: skip
        super().__init__(**{**defaults, **env})


class ServerThread:
    """An ASGI app under uvicorn in a thread of the test process (for apps built with test engines)."""

    def __init__(self, app: Any, health_path: str = "/livez") -> None:
        import uvicorn

        self.health_path = health_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        wait_http(self.url + self.health_path, 30)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

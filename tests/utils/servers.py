"""Real servers on loopback for integration tests: a local S3 API, the worker as a process or a thread."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from scripts.local_stack import Service, free_port, local_aws, wait_http

ROOT = Path(__file__).resolve().parents[2]
# The edge and worker of a test pair share this, as the local stack's pair shares a generated one.
WORKER_SECRET = "test-worker-secret-7f3a"
EDGE_HEADERS = {"X-Worker-Secret": WORKER_SECRET}  # what the edge adds when it calls the worker
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-west-2",
    "AWS_REGION": "us-west-2",
}


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
        self._serve()
        self.client().create_bucket(
            Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        return self

    def _serve(self) -> None:
        self._server.start()

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

    def wait_for_object(self, key: str, timeout: float = 30.0) -> None:
        """Wait for the object at exactly `key` (a HEAD per poll: no listing, which grows with the bucket)."""
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.head_object(Bucket=self.bucket, Key=key)
                return
            except client.exceptions.ClientError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no object at {key} within {timeout} s") from None
                time.sleep(0.005)


class LocalS3Process(LocalS3):
    """The same local S3 API as a process of its own (the local stack's), for benchmarks: moto's request handling
    must not share the GIL with the client that measures."""

    def __init__(self, bucket: str = "ocr-results") -> None:
        super().__init__(bucket)
        self.log = Path(tempfile.mkdtemp(prefix="local-s3-")) / "s3.log"
        self._service = local_aws(sys.executable, self.port, {**os.environ, **AWS_ENV}, log=self.log)

    def _serve(self) -> None:
        self._service.start()
        self._service.wait_healthy(60)

    def stop(self) -> None:
        self._service.stop()


class ServiceProcess:
    """`python -m MODULE` on a free port, run by the local stack's own Service (process group, health wait)."""

    module = ""
    health_path = "/health"

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service = Service(self.module, [sys.executable, "-m", self.module],
                               {**os.environ, **AWS_ENV, "PORT": str(self.port), **env}, self.url + self.health_path)  # fmt: skip

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.service.process

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        self.service.start()
        self.service.wait_healthy(timeout)
        return self

    def stop(self) -> None:
        self.service.stop(timeout=30)


class WorkerProcess(ServiceProcess):
    """The worker (rapidocr unless told otherwise), writing to the local S3 API."""

    module = "gpu_worker"

    def __init__(self, s3: LocalS3, **env: str) -> None:
        defaults = {"OCR_ENGINE": "rapidocr", "RESULTS_BUCKET": s3.bucket, "S3_ENDPOINT_URL": s3.endpoint,
                    "LOG_LEVEL": "WARNING", "WORKER_SHARED_SECRET": WORKER_SECRET}  # fmt: skip
        super().__init__(**{**defaults, **env})


class EdgeProcess(ServiceProcess):
    """The edge under uvicorn (`python -m edge_api`), forwarding to `worker_url`."""

    module = "edge_api"

    def __init__(self, s3: LocalS3, worker_url: str, keys: str, **env: str) -> None:
        defaults = {"WORKER_URL": worker_url, "LOCAL_API_KEYS": keys, "RESULTS_BUCKET": s3.bucket,
                    "S3_ENDPOINT_URL": s3.endpoint, "POWERTOOLS_LOG_LEVEL": "WARNING",
                    "WORKER_SHARED_SECRET": WORKER_SECRET}  # fmt: skip
        super().__init__(**{**defaults, **env})


class ServerThread:
    """An ASGI app under uvicorn in a thread of the test process (for apps built with test engines)."""

    def __init__(self, app: Any, health_path: str = "/livez", settings: Any = None) -> None:
        """With worker `settings`, the app runs under the worker's own server options (slow-client limits)."""
        import uvicorn

        self.health_path = health_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if settings is not None:
            from gpu_worker.http_server import server_config

            config = server_config(app, settings, host="127.0.0.1", port=self.port, log_level="warning")
        else:
            config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        wait_http(self.url + self.health_path, 30)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

"""The local stack: a local S3 API, the worker, the edge and the web app on one machine, no cloud, no GPU.

    bash scripts/run_local.sh            # sets up, then runs this

Starts each service, waits until it is healthy, prints the URLs and the generated local API key, and
stops everything (process groups: no orphans, ports freed) on Ctrl-C, also during start-up. Every
service binds 127.0.0.1: the web app holds the API key server-side, so it is not offered to the
network unless `--web-host` says so. Tests drive the same class.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def port_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    """Any free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while waiting for a service."""


def wait_http(
    url: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    hint: str = "",
    cancel: threading.Event | None = None,
) -> None:
    """Poll `url` until it answers 200; fail if `process` exits, `cancel` is set or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cancel is not None and cancel.is_set():
            raise Interrupted(f"stopped while waiting for {url}")
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}{hint}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        # A short, cancellable pause: Ctrl-C during start-up is answered within a second.
        if cancel is not None:
            cancel.wait(0.2)
        else:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s{hint}")


class Service:
    """One child process in its own process group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], health: str, cwd: Path = ROOT,
                 log: Path | None = None, cancel: threading.Event | None = None) -> None:  # fmt: skip
        self.name, self.argv, self.env, self.health, self.cwd, self.log = name, argv, env, health, cwd, log
        self.cancel = cancel
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn it."""
        output = open(self.log, "ab") if self.log else None  # noqa: SIM115 (None: the parent's output)
        try:
            self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        finally:
            if output is not None:
                output.close()

    def wait_healthy(self, timeout: float) -> None:
        """Poll its health URL until 200; fail if it exits or takes too long."""
        wait_http(self.health, timeout, self.process, self._log_hint(), self.cancel)

    def _log_hint(self) -> str:
        return f" (log: {self.log})" if self.log else ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the whole group, then SIGKILL what is left."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None


def local_aws(python: str, port: int, env: dict[str, str], log: Path | None = None) -> Service:
    """The local AWS endpoint: moto's server (S3, SQS, DynamoDB, SNS) on a loopback port."""
    argv = [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return Service("local S3", argv, env, f"http://127.0.0.1:{port}/moto-api/", log=log)


class LocalStack:
    """Local S3 API + worker + edge + web app, wired together."""

    def __init__(self, *, worker_port: int = 8000, edge_port: int = 8080, web_port: int = 3000,
                 s3_port: int | None = None, api_key: str | None = None, engine: str = "auto",
                 log_dir: Path | None = None, extra_env: dict[str, str] | None = None,
                 web_host: str = "127.0.0.1", cancel: threading.Event | None = None) -> None:  # fmt: skip
        self.api_key = api_key or "sk-local-" + secrets.token_urlsafe(18)
        # Only the edge may tell the worker who the caller is: they share this, nobody else knows it.
        self.worker_secret = secrets.token_urlsafe(32)
        self.bucket = "ocr-results"
        self.s3_port = s3_port or free_port()
        self.web_host = web_host
        # Set by Ctrl-C/SIGTERM (or a test): every wait for a service gives up at once.
        self.cancel = cancel or threading.Event()
        self.ports = {"worker": worker_port, "edge": edge_port, "web": web_port, "s3": self.s3_port}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.log_dir = log_dir or ROOT / ".local-stack"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        tools = ROOT / ".tools" / "node_modules" / ".bin"
        base = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-west-2", "RESULTS_BUCKET": self.bucket,
                "S3_ENDPOINT_URL": self.urls["s3"], "PATH": f"{tools}:{BIN}:{os.environ.get('PATH', '')}",
                **self.jobs_env(), **(extra_env or {})}  # fmt: skip
        self.services = self._services(base, engine)
        for service in self.services.values():
            service.cancel = self.cancel

    def jobs_env(self) -> dict[str, str]:
        """Jobs on the same local endpoint: boto3 finds SQS and DynamoDB through AWS_ENDPOINT_URL."""
        return {"AWS_ENDPOINT_URL": self.urls["s3"], "JOBS_TABLE": "ocr-jobs", "ALLOW_HTTP_WEBHOOKS": "true",
                "ALLOW_LOOPBACK_WEBHOOKS": "true",  # the worker's half: a receiver on this machine
                "JOBS_QUEUE_URL": f"{self.urls['s3']}/123456789012/ocr-jobs",  # moto's account id
                "JOBS_TOPIC_ARN": "arn:aws:sns:us-west-2:123456789012:ocr-jobs-events"}  # completion events  # fmt: skip

    def _services(self, base: dict[str, str], engine: str) -> dict[str, Service]:
        """Each service with its command line, environment and health URL, in start-up order."""
        python, ports, urls, logs = str(BIN / "python"), self.ports, self.urls, self.log_dir
        return {
            "s3": local_aws(python, ports["s3"], base, log=logs / "s3.log"),
            "worker": Service("worker", [python, "-m", "gpu_worker"],
                              {**base, "PORT": str(ports["worker"]), "OCR_ENGINE": engine, "LOG_LEVEL": "INFO",
                               "WORKER_SHARED_SECRET": self.worker_secret},
                              urls["worker"] + "/health", log=logs / "worker.log"),
            "edge": Service("edge", [python, "-m", "edge_api"],
                            {**base, "PORT": str(ports["edge"]), "WORKER_URL": urls["worker"],
                             "LOCAL_API_KEYS": self.api_key, "POWERTOOLS_LOG_LEVEL": "WARNING",
                             "WORKER_SHARED_SECRET": self.worker_secret},
                            urls["edge"] + "/health", log=logs / "edge.log"),
            "web": Service("web app", [str(BIN / "reflex"), "run", "--env", "prod", "--single-port",
                                       "--frontend-port", str(ports["web"]), "--backend-port", str(ports["web"]),
                                       "--backend-host", self.web_host, "--loglevel", "warning"],
                           {**base, "EDGE_URL": urls["edge"], "EDGE_API_KEY": self.api_key,
                            "TELEMETRY_ENABLED": "false", "REFLEX_CHECK_LATEST_VERSION": "0",
                            "NPM_CONFIG_REGISTRY": npm_registry()},
                           urls["web"] + "/", cwd=ROOT / "frontend", log=logs / "web.log"),
        }  # fmt: skip

    def start(self, web: bool = True) -> LocalStack:
        """Start everything in order, each healthy before the next; stop all on failure or `cancel`."""
        busy = [f"{n} port {p}" for n, p in self.ports.items() if (web or n != "web") and not port_free(p)]
        if busy:
            raise SystemExit(f"ports in use: {', '.join(busy)}; stop what holds them or choose other ports")
        try:
            self._start_service("s3", 60)
            self._create_bucket()
            for name, timeout in (("worker", 600), ("edge", 60)) + ((("web", 900),) if web else ()):
                self._start_service(name, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_service(self, name: str, timeout: float) -> None:
        if self.cancel.is_set():
            raise Interrupted(f"stopped before starting {name}")
        self.services[name].start()
        self.services[name].wait_healthy(timeout)

    def _create_bucket(self) -> None:
        import boto3

        client = boto3.client("s3", endpoint_url=self.urls["s3"], region_name="us-west-2",
                              aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        client.create_bucket(
            Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        from gpu_worker.protocol.job_table import create_resources  # the jobs queue, its DLQ and table

        create_resources(region="us-west-2", endpoint_url=self.urls["s3"], table="ocr-jobs", queue="ocr-jobs",
                         dlq="ocr-jobs-dlq", aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        sns = boto3.client("sns", endpoint_url=self.urls["s3"], region_name="us-west-2",
                           aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        sns.create_topic(Name="ocr-jobs-events")  # JOBS_TOPIC_ARN: subscribe to it to see completion events

    def stop_service(self, name: str) -> None:
        """Stop one service (tests stop the worker to see the web app's error)."""
        self.services[name].stop()

    def start_service(self, name: str, timeout: float = 600) -> None:
        """Start one service again and wait until it is healthy."""
        self.services[name].start()
        self.services[name].wait_healthy(timeout)

    def stop(self) -> None:
        """Stop in reverse order."""
        for service in reversed(list(self.services.values())):
            service.stop()

    def banner(self) -> str:
        """What to tell the person who started it."""
        web_note = "" if self.web_host == "127.0.0.1" else f"   (listening on {self.web_host})"
        return "\n".join([
            "Local stack is up:",
            f"  web app     {self.urls['web']}{web_note}",
            f"  API (edge)  {self.urls['edge']}/v1   key: {self.api_key}",
            f"  worker      {self.urls['worker']}   (health, metrics)",
            f"  local S3    {self.urls['s3']}   bucket {self.bucket}",
            f"  logs        {self.log_dir}",
            "For the README's Python snippets, in another shell:",
            f"  export OCR_API={self.urls['edge']}/v1 OCR_API_KEY={self.api_key}",
            "Try it:",
            f"  curl -s {self.urls['edge']}/v1/chat/completions -H 'x-api-key: {self.api_key}' "
            "-H 'content-type: application/json' -d @<(python3 -c \"import base64,json;print(json.dumps({'model':"
            "'deepseek-ocr','task':'ocr','messages':[{'role':'user','content':[{'type':'image_url','image_url':"
            "{'url':'data:image/png;base64,'+base64.b64encode(open('samples/invoice.png','rb').read()).decode()}}]}]}))\")",
            "Press Ctrl-C to stop everything.",
        ])  # fmt: skip


def npm_registry() -> str:
    """The npm registry this machine uses (skips Reflex's probe of a mirror it cannot reach)."""
    try:
        out = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or "https://registry.npmjs.org/"
    except (OSError, subprocess.TimeoutExpired):
        return "https://registry.npmjs.org/"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker-port", type=int, default=8000)
    parser.add_argument("--edge-port", type=int, default=8080)
    parser.add_argument("--web-port", type=int, default=3000)
    parser.add_argument("--aws-port", type=int, default=4566, help="the local AWS endpoint (moto's server)")
    parser.add_argument("--web-host", default="127.0.0.1",
                        help="address the web app listens on; it holds the API key, so widen it only "
                             "behind a login (e.g. 0.0.0.0)")  # fmt: skip
    parser.add_argument("--engine", default=os.environ.get("OCR_ENGINE", "auto"))
    parser.add_argument("--api-key", default=os.environ.get("LOCAL_API_KEY"))
    parser.add_argument("--no-web", action="store_true", help="start everything but the web app")
    return parser.parse_args(argv)


def watch(stack: LocalStack, stop: threading.Event) -> None:
    """Report a service that exits (the rest keeps running) until `stop` is set."""
    reported: set[str] = set()
    while not stop.wait(0.5):
        for name, service in stack.services.items():
            process = service.process
            if name not in reported and process is not None and process.poll() is not None:
                # The web app and the edge then say the worker is unavailable, in words.
                print(f"{service.name} exited ({process.returncode}); see {service.log}", flush=True)
                reported.add(name)


def main(argv: list[str] | None = None) -> int:
    """Start the stack, print the banner, stop cleanly on Ctrl-C or SIGTERM (also during start-up)."""
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        # Only a flag: every wait polls it, so a start-up in progress unwinds and stops what it started.
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(worker_port=args.worker_port, edge_port=args.edge_port, web_port=args.web_port,
                       s3_port=args.aws_port, engine=args.engine, api_key=args.api_key, web_host=args.web_host,
                       cancel=stop)  # fmt: skip
    print("Starting the local stack (the first start builds the web app: a minute or two)...", flush=True)
    try:
        stack.start(web=not args.no_web)
        print(stack.banner(), flush=True)
        watch(stack, stop)
    except Interrupted:
        pass
    finally:
        print("Stopping...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The local stack: a local S3 API, the worker, the edge and the web app on one machine, no cloud, no GPU.

    bash scripts/run_local.sh            # sets up, then runs this

Starts each service, waits until it is healthy, prints the URLs and the generated local API key, and
stops everything (process groups: no orphans, ports freed) on Ctrl-C. Tests drive the same class.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
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


def wait_http(
    url: str, timeout: float, process: subprocess.Popen[bytes] | None = None, hint: str = ""
) -> None:
    """Poll `url` until it answers 200; fail if `process` exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}{hint}")
        try:
            if httpx.get(url, timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s{hint}")


class Service:
    """One child process in its own process group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], health: str, cwd: Path = ROOT,
                 log: Path | None = None) -> None:  # fmt: skip
        self.name, self.argv, self.env, self.health, self.cwd, self.log = name, argv, env, health, cwd, log
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
        wait_http(self.health, timeout, self.process, self._log_hint())

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


class LocalStack:
    """Local S3 API + worker + edge + web app, wired together."""

    def __init__(self, *, worker_port: int = 8000, edge_port: int = 8080, web_port: int = 3000,
                 s3_port: int | None = None, api_key: str | None = None, engine: str = "auto",
                 log_dir: Path | None = None, extra_env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.api_key = api_key or "sk-local-" + secrets.token_urlsafe(18)
        self.bucket = "ocr-results"
        self.s3_port = s3_port or free_port()
        self.ports = {"worker": worker_port, "edge": edge_port, "web": web_port, "s3": self.s3_port}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.log_dir = log_dir or ROOT / ".local-stack"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        tools = ROOT / ".tools" / "node_modules" / ".bin"
        base = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-west-2", "RESULTS_BUCKET": self.bucket,
                "S3_ENDPOINT_URL": self.urls["s3"], "PATH": f"{tools}:{BIN}:{os.environ.get('PATH', '')}",
                **(extra_env or {})}  # fmt: skip
        self.services = {
            "s3": Service("local S3", [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)],
                          base, self.urls["s3"] + "/moto-api/", log=self.log_dir / "s3.log"),
            "worker": Service("worker", [str(BIN / "python"), "-m", "gpu_worker"],
                              {**base, "PORT": str(worker_port), "OCR_ENGINE": engine, "LOG_LEVEL": "INFO"},
                              self.urls["worker"] + "/health", log=self.log_dir / "worker.log"),
            "edge": Service("edge", [str(BIN / "python"), "-m", "edge_api"],
                            {**base, "PORT": str(edge_port), "WORKER_URL": self.urls["worker"],
                             "LOCAL_API_KEYS": self.api_key, "POWERTOOLS_LOG_LEVEL": "WARNING"},
                            self.urls["edge"] + "/health", log=self.log_dir / "edge.log"),
            "web": Service("web app", [str(BIN / "reflex"), "run", "--env", "prod", "--single-port",
                                       "--frontend-port", str(web_port), "--backend-port", str(web_port),
                                       "--loglevel", "warning"],
                           {**base, "EDGE_URL": self.urls["edge"], "EDGE_API_KEY": self.api_key,
                            "TELEMETRY_ENABLED": "false", "REFLEX_CHECK_LATEST_VERSION": "0",
                            "NPM_CONFIG_REGISTRY": npm_registry()},
                           self.urls["web"] + "/", cwd=ROOT / "frontend", log=self.log_dir / "web.log"),
        }  # fmt: skip

    def start(self, web: bool = True) -> LocalStack:
        """Start everything in order, each healthy before the next; stop all on failure."""
        busy = [f"{n} port {p}" for n, p in self.ports.items() if (web or n != "web") and not port_free(p)]
        if busy:
            raise SystemExit(f"ports in use: {', '.join(busy)}; stop what holds them or choose other ports")
        try:
            self.services["s3"].start()
            self.services["s3"].wait_healthy(60)
            self._create_bucket()
            for name, timeout in (("worker", 600), ("edge", 60)) + ((("web", 900),) if web else ()):
                self.services[name].start()
                self.services[name].wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _create_bucket(self) -> None:
        import boto3

        client = boto3.client("s3", endpoint_url=self.urls["s3"], region_name="us-west-2",
                              aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        client.create_bucket(
            Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )

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
        return "\n".join([
            "Local stack is up:",
            f"  web app     {self.urls['web']}",
            f"  API (edge)  {self.urls['edge']}/v1   key: {self.api_key}",
            f"  worker      {self.urls['worker']}   (health, metrics)",
            f"  local S3    {self.urls['s3']}   bucket {self.bucket}",
            f"  logs        {self.log_dir}",
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


def main() -> None:
    """Start the stack, print the banner, stop cleanly on Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker-port", type=int, default=8000)
    parser.add_argument("--edge-port", type=int, default=8080)
    parser.add_argument("--web-port", type=int, default=3000)
    parser.add_argument("--engine", default=os.environ.get("OCR_ENGINE", "auto"))
    parser.add_argument("--api-key", default=os.environ.get("LOCAL_API_KEY"))
    args = parser.parse_args()
    stack = LocalStack(worker_port=args.worker_port, edge_port=args.edge_port, web_port=args.web_port,
                       engine=args.engine, api_key=args.api_key)  # fmt: skip
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print("Starting the local stack (the first start builds the web app: a minute or two)...", flush=True)
    stack.start()
    print(stack.banner(), flush=True)
    reported: set[str] = set()
    try:
        while not stopping:
            for name, service in stack.services.items():
                if (
                    name not in reported
                    and service.process is not None
                    and service.process.poll() is not None
                ):
                    # The rest keeps running: the web app and the edge then say the worker is unavailable.
                    print(
                        f"{service.name} exited ({service.process.returncode}); see {service.log}", flush=True
                    )
                    reported.add(name)
            time.sleep(0.5)
    finally:
        print("Stopping...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    main()

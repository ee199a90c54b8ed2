"""The README's first command itself: start, health, one OCR call through the edge, clean stop."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from scripts.local_stack import free_port, port_free

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_the_local_stack_command_starts_serves_and_stops_cleanly():
    ports = {"worker": free_port(), "edge": free_port(), "web": free_port()}
    process = subprocess.Popen(
        [sys.executable, "scripts/local_stack.py", "--worker-port", str(ports["worker"]), "--edge-port",
         str(ports["edge"]), "--web-port", str(ports["web"]), "--engine", "rapidocr"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output = []
    try:
        deadline = time.monotonic() + 900
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        banner = "".join(output)
        assert "Local stack is up" in banner, banner
        key = re.search(r"key: (\S+)", banner).group(1)
        edge = f"http://127.0.0.1:{ports['edge']}"
        assert httpx.get(f"http://127.0.0.1:{ports['worker']}/health").json()["engine"] == "rapidocr"
        assert httpx.get(edge + "/health").json() == {"status": "ok", "worker": "ok"}
        assert httpx.get(f"http://127.0.0.1:{ports['web']}/").status_code == 200
        sample = base64.b64encode((ROOT / "samples" / "invoice.png").read_bytes()).decode()
        reply = httpx.post(edge + "/v1/chat/completions", headers={"x-api-key": key}, timeout=120, json={
            "model": "deepseek-ocr", "task": "ocr",
            "messages": [{"role": "user", "content": [{"type": "image_url",
                                                       "image_url": {"url": f"data:image/png;base64,{sample}"}}]}]})  # fmt: skip
        assert reply.status_code == 200
        assert "Total due: 176.40 EUR" in reply.json()["choices"][0]["message"]["content"]
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=90)
        assert process.returncode == 0, rest
        assert "Stopped." in rest
        for port in ports.values():
            assert port_free(port), f"port {port} still in use"
        leftovers = subprocess.run(
            ["pgrep", "-f", f"--backend-port {ports['web']}"], capture_output=True, text=True
        )
        assert leftovers.stdout.strip() == ""
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

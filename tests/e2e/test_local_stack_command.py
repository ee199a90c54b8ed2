"""The README's first command itself: start, health, one OCR call through the edge, clean stop (also
when Ctrl-C arrives in the middle of start-up), every service on 127.0.0.1 only."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from scripts.local_stack import free_port, port_free

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def start_command(ports: dict[str, int]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "scripts/local_stack.py", "--worker-port", str(ports["worker"]), "--edge-port",
         str(ports["edge"]), "--web-port", str(ports["web"]), "--aws-port", str(ports["aws"]), "--engine", "rapidocr"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def listening_hosts(port: int) -> set[str]:
    """The local addresses that listen on `port` (from /proc/net/tcp and tcp6)."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # /proc writes each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                hosts.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words))
    return hosts


def process_groups_of(pid: int) -> set[int]:
    """The process groups the stack's children lead (each child runs in its own group)."""
    groups = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields: state, ppid, pgrp, ...
            groups.add(int(fields[2]))
    return groups


def members_of(groups: set[int]) -> list[str]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[2]) in groups and fields[0] != "Z":
            alive.append(text.split(")")[0])
    return alive


def test_the_local_stack_command_starts_serves_and_stops_cleanly():
    ports = {"worker": free_port(), "edge": free_port(), "web": free_port(), "aws": free_port()}
    process = start_command(ports)
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
        # The web app holds the API key: it must not be reachable from the network by default.
        for name, port in ports.items():
            assert listening_hosts(port) == {"127.0.0.1"}, (name, listening_hosts(port))
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


def test_ctrl_c_during_start_up_stops_everything_at_once():
    ports = {"worker": free_port(), "edge": free_port(), "web": free_port(), "aws": free_port()}
    process = start_command(ports)
    try:
        # Wait until the web app (the slowest part: it builds) is starting, with its own children.
        deadline = time.monotonic() + 300
        groups: set[int] = set()
        while time.monotonic() < deadline and len(groups) < 4:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            groups = process_groups_of(process.pid)
            time.sleep(0.2)
        assert len(groups) == 4, "the four services never all started"
        time.sleep(2)  # the web app is now compiling, with bun below it
        assert len(members_of(groups)) > 4
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        took = time.monotonic() - sent
        assert process.returncode == 0, rest
        assert "Stopped." in rest and "Local stack is up" not in rest
        assert took < 30, f"stopping took {took:.1f} s"
        assert members_of(groups) == []
        for port in ports.values():
            assert port_free(port), f"port {port} still in use"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

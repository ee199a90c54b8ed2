"""A webhook receiver on loopback: a real HTTP server that answers `status` and keeps every call it gets."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import NamedTuple

from scripts.local_stack import free_port


class Call(NamedTuple):
    host: str  # the Host header as sent
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class Receiver:
    """POSTs to http://127.0.0.1:<port>/... are answered `status` and kept in `calls`."""

    def __init__(self, status: int = 204) -> None:
        self.calls: list[Call] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                calls.append(Call(self.headers["Host"], self.path, headers, body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

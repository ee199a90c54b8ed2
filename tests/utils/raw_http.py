"""Raw HTTP/1.1 on a socket, for what no client library sends: oversized or endless heads, pipelined requests."""

from __future__ import annotations

import re
import select
import socket
import time

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def read_until_closed(sock: socket.socket, within_s: float) -> tuple[bytes, bool]:
    """Everything the server sends within `within_s`, and whether it closed the connection by then."""
    deadline, data = time.monotonic() + within_s, b""
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def exchange(port: int, data: bytes, within_s: float = 5.0) -> tuple[bytes, bool]:
    """Send `data` at once on a new connection; what came back within `within_s` and whether it was closed."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        return read_until_closed(sock, within_s)


def endless_head(port: int, chunk: int = 8192, limit: int = 4 * 1024 * 1024) -> tuple[bytes, int]:
    """Send a request head whose one header never ends, `chunk` bytes at a time, until the server answers or cuts
    the connection (or `limit` bytes are sent). What it answered, and how many head bytes were sent by then."""
    sock = socket.create_connection(("127.0.0.1", port))
    sent, reply = 0, b""
    try:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        while sent < limit:
            if select.select([sock], [], [], 0.001)[0]:
                reply, _ = read_until_closed(sock, 2.0)
                break
            sock.sendall(b"a" * chunk)
            sent += chunk
    except (BrokenPipeError, ConnectionResetError):
        reply = reply or read_until_closed(sock, 1.0)[0]
    finally:
        sock.close()
    return reply, sent


def statuses(replies: bytes) -> list[int]:
    """The status codes of the responses in `replies`, in order (each status line follows the previous body)."""
    return [int(code) for code in STATUS_LINE.findall(replies)]

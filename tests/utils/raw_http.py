"""Raw HTTP/1.1 on a socket, for what no client library sends: oversized or endless heads, pipelined requests."""

from __future__ import annotations

import re
import select
import socket
import time

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def read_until_closed(sock: socket.socket, within_s: float, expect: int | None = None) -> tuple[bytes, bool]:
    """What the server sends within `within_s` (or until `expect` responses are in), and whether it closed."""
    deadline, data = time.monotonic() + within_s, b""
    while (left := deadline - time.monotonic()) > 0:
        if expect is not None and len(statuses(data)) >= expect:
            break
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


def exchange(
    port: int, *writes: bytes, within_s: float = 5.0, expect: int | None = None
) -> tuple[bytes, bool]:
    """Send each of `writes` on a new connection, 0.2 s apart; what came back within `within_s` (or once `expect`
    responses are in), and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for index, data in enumerate(writes):
            if index:
                time.sleep(0.2)
            sock.sendall(data)
        return read_until_closed(sock, within_s, expect)


def endless(port: int, opening: bytes, chunk: int = 8192, limit: int = 8 * 1024 * 1024) -> tuple[bytes, int]:
    """Send `opening`, then `a` bytes `chunk` at a time (a header or trailer that never ends), until the server
    answers or cuts the connection, or `limit` bytes are sent. What it answered, and how many bytes were sent."""
    sock = socket.create_connection(("127.0.0.1", port))
    sent, reply = 0, b""
    try:
        sock.sendall(opening)
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


ENDLESS_HEAD = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Endless: "
ENDLESS_TRAILER = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Endless: ")  # fmt: skip


def statuses(replies: bytes) -> list[int]:
    """The status codes of the responses in `replies`, in order (each status line follows the previous body)."""
    return [int(code) for code in STATUS_LINE.findall(replies)]

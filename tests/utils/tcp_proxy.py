"""A TCP proxy on loopback for fault tests: pass traffic, pause it (a silent hang), cut it (refuse and reset).

    proxy = TcpProxy(("127.0.0.1", s3.port)).start()   # point the client at proxy.url
    proxy.pause()    # connections are accepted but nothing flows either way: calls hang
    proxy.cut()      # new connections are refused, open ones reset
    proxy.resume()   # traffic flows again (bytes held during a pause are delivered)
    proxy.stop()

Threads, not asyncio, so it works beside any event loop (uvicorn in a thread, pytest-asyncio, a bench).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

_POLL_S = 0.05


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `upstream`; the test decides when traffic flows, hangs or is refused."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.port = port
        self._flowing = threading.Event()
        self._flowing.set()
        self._cut = False
        self._stopped = False
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.accepted = 0  # connections accepted so far (a test can see that a client did connect)

    # ---- control ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, for an endpoint_url."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> str:
        """`flowing`, `paused` or `cut`."""
        return "cut" if self._cut else ("flowing" if self._flowing.is_set() else "paused")

    def start(self) -> TcpProxy:
        """Listen (on `port`, or a free one) and start accepting."""
        self._listen()
        return self

    def pause(self) -> None:
        """Hang: keep accepting connections but move no bytes in either direction until resume()."""
        self._flowing.clear()

    def cut(self) -> None:
        """Refuse: close the listener (connection refused) and reset every open connection."""
        with self._lock:
            self._cut = True
            listener, self._listener = self._listener, None
        _close_listener(listener)
        self._reset_all()

    def resume(self) -> None:
        """Let traffic flow again; after a cut, listen again on the same port."""
        with self._lock:
            was_cut, self._cut = self._cut, False
        if was_cut:
            self._listen()
        self._flowing.set()

    def stop(self) -> None:
        """Close everything and join the threads."""
        self._stopped = True
        self._flowing.set()
        with self._lock:
            listener, self._listener = self._listener, None
        _close_listener(listener)
        self._reset_all()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- internals -------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(512)
        listener.settimeout(_POLL_S)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._spawn(self._accept_loop, listener)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopped and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed (cut or stop)
            self.accepted += 1
            self._track(client)
            self._spawn(self._connect_and_pump, client)

    def _connect_and_pump(self, client: socket.socket) -> None:
        # While paused, do not even reach the upstream: the client sees an open, silent connection.
        if not self._wait_flowing():
            self._reset(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self._reset(client)
            return
        self._track(upstream)
        self._spawn(self._pump, upstream, client)
        self._pump(client, upstream)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            source.settimeout(_POLL_S)
        except OSError:  # already reset by a cut or a stop before this thread began
            self._reset(target)
            return
        while True:
            try:
                data = source.recv(65536)
            except TimeoutError:
                if self._stopped or self._cut:
                    break
                continue
            except OSError:
                break
            if not data:
                with contextlib.suppress(OSError):
                    target.shutdown(socket.SHUT_WR)
                return
            # Bytes read during a pause are held, then delivered on resume (a stalled link, not a lossy one).
            if not self._wait_flowing():
                break
            try:
                target.sendall(data)
            except OSError:
                break
        self._reset(source)
        self._reset(target)

    def _wait_flowing(self) -> bool:
        """Block while paused; False when the proxy was cut or stopped meanwhile."""
        while not self._flowing.wait(_POLL_S):
            if self._stopped or self._cut:
                return False
        return not (self._stopped or self._cut)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _reset_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._reset(sock)

    def _reset(self, sock: socket.socket) -> None:
        """Close with SO_LINGER 0, so the peer sees a reset (RST), not a polite FIN."""
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()


def _close_listener(listener: socket.socket | None) -> None:
    """Stop listening now: shutdown() first, because close() alone leaves the kernel socket listening
    until the accept thread's poll returns, and a connect in that gap would still succeed."""
    if listener is None:
        return
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()

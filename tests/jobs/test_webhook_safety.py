"""The worker's webhook call: no SSRF (every resolved address must be public, the checked one is the one used),
the URL never logged, and a slow receiver bounded by a wall-clock deadline, off the page path.

Receivers are real HTTP servers on loopback; the resolver is ours, so a made-up name can point anywhere.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from gpu_worker import job_output
from gpu_worker.job_output import Notifier, WebhookRefused, call_webhook, check_webhook, fail_job
from gpu_worker.protocol.job_table import JobTable
from tests.utils.webhooks import Receiver


def resolver_for(*addresses: str, calls: list[str] | None = None) -> Any:
    """A getaddrinfo that answers every name with `addresses` (and notes the names asked)."""

    def resolve(host: str, port: int, *args: Any) -> list[Any]:
        if calls is not None:
            calls.append(host)
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::", "ff02::1",
     "::ffff:127.0.0.1", "::ffff:169.254.169.254"],
)  # fmt: skip
def test_a_non_public_address_is_refused(address):
    with pytest.raises(WebhookRefused):
        check_webhook("https://hooks.example/x", resolver=resolver_for(address))


def test_one_private_answer_among_public_ones_is_refused():
    with pytest.raises(WebhookRefused):
        check_webhook("https://hooks.example/x", resolver=resolver_for("93.184.216.34", "10.0.0.1"))


def test_a_public_address_is_the_one_to_connect_to():
    assert check_webhook("https://hooks.example/x", resolver=resolver_for("93.184.216.34")) == "93.184.216.34"
    assert check_webhook("http://h.example:8080/x", resolver=resolver_for("2606:4700::1")) == "2606:4700::1"


def test_loopback_only_with_the_local_setting_and_never_private():
    local = resolver_for("127.0.0.1")
    assert check_webhook("http://h.example/x", allow_loopback=True, resolver=local) == "127.0.0.1"
    with pytest.raises(WebhookRefused):
        check_webhook("http://h.example/x", allow_loopback=True, resolver=resolver_for("169.254.169.254"))


def test_loopback_receiver_is_not_called_by_default(receiver):
    url = f"http://127.0.0.1:{receiver.port}/hook"
    assert not call_webhook(url, "s", b"{}", attempts=1)
    assert receiver.calls == []


def test_the_checked_address_is_used_with_the_original_host_header(receiver):
    # The name does not exist in DNS: the call reaches the receiver only through the address we checked.
    url = f"http://hooks.invalid:{receiver.port}/hook?token=abc"
    assert call_webhook(url, "s", b"{}", attempts=1, allow_loopback=True, resolver=resolver_for("127.0.0.1"))
    assert [(c.host, c.path) for c in receiver.calls] == [
        (f"hooks.invalid:{receiver.port}", "/hook?token=abc")
    ]


def test_every_attempt_resolves_again_so_a_rebound_name_is_refused(receiver):
    asked: list[str] = []
    answers = iter(["127.0.0.1", "10.0.0.7", "10.0.0.7"])

    def rebinding(host: str, port: int, *args: Any) -> list[Any]:
        asked.append(host)
        return resolver_for(next(answers))(host, port)

    failing = Receiver(status=500)
    try:
        url = f"http://hooks.invalid:{failing.port}/hook"
        assert not call_webhook(
            url, "s", b"{}", attempts=3, allow_loopback=True, resolver=rebinding, backoff_s=0
        )
        assert asked == ["hooks.invalid"] * 3 and len(failing.calls) == 1  # only the first (loopback) answer
    finally:
        failing.stop()


def test_the_log_names_the_host_never_the_url(caplog):
    failing = Receiver(status=500)
    try:
        url = f"http://hooks.invalid:{failing.port}/hook?token=sekrit-123"
        with caplog.at_level("WARNING", logger="gpu_worker.job_output"):
            call_webhook(url, "s", b"{}", attempts=2, allow_loopback=True, resolver=resolver_for("127.0.0.1"),
                         backoff_s=0)  # fmt: skip
            call_webhook(url, "s", b"{}", attempts=1, resolver=resolver_for("10.1.1.1"))
        assert "hooks.invalid" in caplog.text and "sekrit" not in caplog.text and "/hook" not in caplog.text
    finally:
        failing.stop()


class Trickler:
    """A receiver that sends its status line, then one header byte every 0.2 s for up to 20 s."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(100):
                    if self.stop.wait(0.2):
                        return
                    connection.sendall(b"a")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def trickler():
    server = Trickler()
    yield server
    server.close()


def test_a_trickling_receiver_is_cut_at_the_attempt_deadline(trickler):
    url = f"http://127.0.0.1:{trickler.port}/hook"
    started = time.monotonic()
    assert not call_webhook(url, "s", b"{}", attempts=1, allow_loopback=True, deadline_s=1.0)
    elapsed = time.monotonic() - started
    # The trickle would last 20 s (each byte inside any per-read timeout); the attempt ends near its 1 s deadline.
    assert elapsed < 6, elapsed


def test_a_name_server_that_never_answers_costs_one_attempt_deadline_not_a_hung_thread(receiver):
    release = threading.Event()

    def silent(host: str, port: int, *args: Any) -> list[Any]:  # getaddrinfo has no timeout of its own
        release.wait(30)
        return resolver_for("127.0.0.1")(host, port)

    started = time.monotonic()
    try:
        url = f"http://hooks.invalid:{receiver.port}/hook"
        assert not call_webhook(url, "s", b"{}", attempts=2, allow_loopback=True, deadline_s=0.5,
                                resolver=silent, backoff_s=0.1)  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 3, elapsed
    assert receiver.calls == []


def test_the_failed_status_is_written_and_the_caller_freed_while_the_webhook_trickles(
    trickler, local_s3, monkeypatch
):
    monkeypatch.setattr(job_output, "WEBHOOK_ATTEMPTS", 2)
    monkeypatch.setattr(job_output, "WEBHOOK_DEADLINE_S", 1.0)
    monkeypatch.setattr(job_output, "WEBHOOK_BACKOFF_S", 0.1)
    from gpu_worker.protocol.job_table import create_resources

    names = create_resources(region="us-west-2", endpoint_url=local_s3.endpoint, table="jobs-hook",
                             queue="jobs-hook", dlq="jobs-hook-dlq", max_receive=2, visibility_s=10)  # fmt: skip
    table = JobTable(names["table"], region="us-west-2", endpoint_url=local_s3.endpoint)
    job = {"pk": "job#j1", "sk": "job", "id": "j1", "owner": "o", "status": "running", "task": "markdown",
           "webhook_url": f"http://127.0.0.1:{trickler.port}/hook", "webhook_secret": "s",
           "pages_done": 0, "pages_failed": 0, "created": 1}  # fmt: skip
    table.table.put_item(Item=job)
    notifier = Notifier(None, "us-west-2", allow_loopback=True)
    sent: list[Any] = []
    try:
        fail_job(table, job, "broken", lambda j: sent.append(notifier(j)))
        stored = table.get_job("j1")
        assert stored is not None and stored["status"] == "failed" and stored["error"] == "broken"
        assert len(sent) == 1 and not sent[0].done()  # the webhook still trickling; the caller already back
        sent[0].result(timeout=15)  # both attempts ended by their deadlines
        assert trickler.connections == 2
    finally:
        notifier.shutdown()

"""The TCP proxy itself, through boto3 against the local S3 API: it passes, hangs, refuses, recovers."""

import socket
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from tests.utils.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(local_s3):
    with TcpProxy(("127.0.0.1", local_s3.port)) as running:
        yield running


def s3_via(proxy, read_timeout=0.5):
    config = Config(connect_timeout=0.5, read_timeout=read_timeout, retries={"max_attempts": 1})
    return boto3.client("s3", endpoint_url=proxy.url, region_name="us-west-2", config=config)


def test_traffic_passes_and_a_pause_hangs_until_resume(proxy, local_s3):
    client = s3_via(proxy)
    client.put_object(Bucket=local_s3.bucket, Key="proxy/a.txt", Body=b"one")
    proxy.pause()
    assert proxy.state == "paused"
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        client.get_object(Bucket=local_s3.bucket, Key="proxy/a.txt")
    assert 0.4 < time.monotonic() - started < 3
    proxy.resume()
    assert client.get_object(Bucket=local_s3.bucket, Key="proxy/a.txt")["Body"].read() == b"one"


def test_a_paused_proxy_accepts_connections_but_answers_nothing(proxy):
    proxy.pause()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=1) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conn.recv(1)


def test_a_cut_refuses_connections_and_resume_listens_again(proxy, local_s3):
    client = s3_via(proxy)
    proxy.cut()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
    with pytest.raises((EndpointConnectionError, ConnectTimeoutError)):
        client.list_objects_v2(Bucket=local_s3.bucket)
    proxy.resume()
    assert proxy.state == "flowing"
    client.put_object(Bucket=local_s3.bucket, Key="proxy/b.txt", Body=b"two")
    assert client.get_object(Bucket=local_s3.bucket, Key="proxy/b.txt")["Body"].read() == b"two"


def test_a_cut_resets_a_connection_that_is_open(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as conn:
        time.sleep(0.2)
        proxy.cut()
        time.sleep(0.2)
        conn.settimeout(2)
        with pytest.raises(ConnectionResetError):
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.recv(1)

"""Result links: presigned GETs signed locally, byte for byte what botocore writes, for the URL it resolves."""

import datetime
import time
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import NoCredentialsError, ParamValidationError

from gpu_worker.presign import LinkTemplate, presigned_get
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore

KEYS = [
    "results/2026/11/29/ocr-0123abcd/result.json",
    "results/2026/11/29/ocr-x/page-0001/annotated.png",
    "odd/a b+c~d/é=&?#%.png",
    "x//y/./z/../w",
    "/lead",
    "a\nb\tc",
]


@pytest.mark.parametrize(
    "endpoint,region",
    [("http://127.0.0.1:4566", "eu-west-1"), (None, "eu-west-1"), (None, "us-east-1"), (None, "aws-global")],
    ids=["local-endpoint", "aws", "us-east-1", "aws-global"],  # aws-global: botocore signs for us-east-1
)
@pytest.mark.parametrize("token", [None, "session-token/+="], ids=["keys", "session"])
def test_a_link_is_the_url_botocore_presigns(monkeypatch, endpoint, region, token):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    if token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    else:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    store = ResultStore(
        WorkerSettings(results_bucket="ocr-results", s3_endpoint_url=endpoint, aws_region=region)
    )
    at = datetime.datetime(2026, 11, 29, 12, 0, 0)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        for key in KEYS:
            expected = store.client.generate_presigned_url(
                "get_object", Params={"Bucket": "ocr-results", "Key": key}, ExpiresIn=store.ttl
            )
            assert store.link(key, now=at.replace(tzinfo=datetime.UTC)).url == expected
    assert ("X-Amz-Security-Token" in store.link(KEYS[0]).url) == bool(token)


def test_the_signer_gives_the_signature_in_the_s3_documentation():
    """AWS's own worked example of a presigned GET (S3 API reference, 'Authenticating Requests: Using Query
    Parameters'), independent of botocore."""
    template = LinkTemplate("https://examplebucket.s3.amazonaws.com/", "us-east-1", "s3")
    credentials = ReadOnlyCredentials(
        "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None
    )
    at = datetime.datetime(2013, 5, 24, tzinfo=datetime.UTC)
    url = presigned_get(template, "test.txt", credentials, 86400, at)
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


@pytest.mark.parametrize(
    "base,host",
    [("http://127.0.0.1:4566/b/", "127.0.0.1:4566"), ("https://B.s3.amazonaws.com:443/", "b.s3.amazonaws.com"),
     ("http://[::1]:9000/b/", "[::1]:9000"), ("http://minio:80/b/", "minio")],
)  # fmt: skip
def test_the_signed_host_is_the_one_a_client_sends(base, host):
    assert LinkTemplate(base, "us-east-1", "s3").host == host


def test_an_empty_key_is_refused_as_botocore_refuses_it(monkeypatch):
    """Signed as it is, an empty key would be a link to the bucket itself: a listing."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    store = ResultStore(WorkerSettings(results_bucket="ocr-results", aws_region="eu-west-1"))
    with pytest.raises(ParamValidationError):
        store.client.generate_presigned_url("get_object", Params={"Bucket": "ocr-results", "Key": ""})
    with pytest.raises(ValueError, match="empty"):
        store.link("")


def test_a_link_is_signed_now_and_says_when_it_expires(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    store = ResultStore(WorkerSettings(results_bucket="ocr-results", aws_region="eu-west-1"))
    before = time.time()
    link = store.link(KEYS[0])
    signed = datetime.datetime.strptime(parse_qs(urlsplit(link.url).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    signed_at = signed.replace(tzinfo=datetime.UTC).timestamp()
    assert before - 1 <= signed_at <= time.time()
    assert link.expires_at == int(signed_at) + store.ttl


def test_a_link_addresses_its_object_on_the_local_s3(local_s3):
    """The URL's bucket and escaped key reach the object. moto does not check presigned signatures (a link with
    its signature zeroed is served too): the signature is proven by the comparisons with botocore and with AWS's
    worked example above."""
    store = ResultStore(WorkerSettings(results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint))
    store.put("results/links/a b/é.json", b'{"ok": true}', "application/json")
    response = httpx.get(store.link("results/links/a b/é.json").url)
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert (
        httpx.get(store.link("results/links/a b/e.json").url).status_code == 404
    )  # another key: not this object


def test_without_credentials_a_link_raises_what_botocore_raises(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = ResultStore(WorkerSettings(results_bucket="ocr-results", aws_region="eu-west-1"))
    with pytest.raises(NoCredentialsError):
        store.link(KEYS[0])

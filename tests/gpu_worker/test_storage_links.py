"""Result links: signed with botocore's own S3 query signer, without its per-call endpoint resolution."""

import datetime
from unittest import mock

import httpx
import pytest
from botocore.exceptions import NoCredentialsError

from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore

KEYS = [
    "results/2026/11/29/ocr-0123abcd/result.json",
    "results/2026/11/29/ocr-x/page-0001/annotated.png",
    "odd/a b+c~d/é=&?#%.png",
    "x//y/./z/../w",
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
        WorkerSettings(results_bucket="ocr-results", s3_endpoint_url=endpoint, aws_region="eu-west-1")
    )
    at = datetime.datetime(2026, 11, 29, 12, 0, 0)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        for key in KEYS:
            expected = store.client.generate_presigned_url(
                "get_object", Params={"Bucket": "ocr-results", "Key": key}, ExpiresIn=store.ttl
            )
            assert store.link(key).url == expected
    assert ("X-Amz-Security-Token" in store.link(KEYS[0]).url) == bool(token)


def test_a_link_addresses_its_object_on_the_local_s3(local_s3):
    """The URL's bucket and escaped key reach the object. moto does not check presigned signatures (a link with
    its signature zeroed is served too), so the signature itself is proven only by the comparison above."""
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

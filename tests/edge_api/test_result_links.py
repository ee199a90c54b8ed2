"""Links in a looked-up result are signed again (they may have expired since it was stored), a document's pages'
included, by the signer the worker uses (gpu_worker/presign.py), with no call to S3."""

import copy
import time
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from edge_api.settings import EdgeSettings
from edge_api.store import EdgeStore


def stale(key: str) -> dict:
    return {"key": key, "url": "https://expired.example/" + key, "expires_at": 1}


def test_every_stored_link_of_a_document_is_signed_again(local_s3):
    store = EdgeStore(EdgeSettings(results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint))
    prefix = "results/2026/11/29/req-doc/"
    keys = [prefix + "result.json", prefix + "page-0001/annotated.png", prefix + "page-0003/annotated.png"]
    for key in keys:
        store.client.put_object(Bucket=local_s3.bucket, Key=key, Body=key.encode())
    body = {
        "ocr": {
            "result": stale(keys[0]),
            "annotated_image": None,
            "pages": [
                {"page": 1, "annotated_image": stale(keys[1])},
                {"page": 2, "annotated_image": None},
                {"page": 3, "annotated_image": stale(keys[2])},
            ],
        }
    }
    store.signer.sign("warm")  # the signer learns the bucket's URL from botocore once (still no S3 call)
    with mock.patch.object(store.client, "_make_api_call", side_effect=AssertionError("S3 was called")):
        fresh = store._fresh_links(body)["ocr"]
    links = [fresh["result"], fresh["pages"][0]["annotated_image"], fresh["pages"][2]["annotated_image"]]
    assert fresh["annotated_image"] is None and fresh["pages"][1]["annotated_image"] is None
    for key, link in zip(keys, links, strict=True):
        assert link["key"] == key
        assert link["expires_at"] >= time.time() + store.settings.result_url_ttl_s - 5
        assert parse_qs(urlsplit(link["url"]).query)["X-Amz-Expires"] == [
            str(store.settings.result_url_ttl_s)
        ]
        assert httpx.get(link["url"]).content == key.encode()  # it addresses its own object


@pytest.mark.parametrize("ocr", [
    "not an object",
    {"pages": "not a list"},
    {"pages": ["not an object", None, 5]},
    {"result": {"key": ""}, "annotated_image": {"key": 5}, "pages": [{"annotated_image": {"url": "x"}}]},
])  # fmt: skip
def test_a_stored_body_of_the_wrong_shape_is_returned_as_it_is(local_s3, ocr):
    """A result.json is ours, but a lookup must not fail on one that is odd: its links are left untouched."""
    store = EdgeStore(EdgeSettings(results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint))
    body = {"ocr": copy.deepcopy(ocr)}
    assert store._fresh_links(body) == {"ocr": ocr}

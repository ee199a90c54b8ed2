"""Links in a looked-up result are signed again (they may have expired since it was stored), a document's pages'
included, by the signer the worker uses (gpu_worker/presign.py), with no call to S3."""

import time
from urllib.parse import parse_qs, urlsplit

import httpx

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

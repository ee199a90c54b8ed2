"""Presigned result links, per link in a hot loop, three ways in the same run (no S3 call: signing is local).

    .venv/bin/python -m bench.result_links [--links 3000] [--rounds 5]

- `generate_presigned_url`: botocore's client call (endpoint resolution, serialisation, signer) for every link;
- botocore's `S3SigV4QueryAuth` on the bucket URL learnt once (what the worker did before);
- `ResultStore.link`: the worker now (its own SigV4 query signing, the day's signing key cached).
Medians over the rounds, and the ratios to `generate_presigned_url`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from urllib.parse import quote

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest

from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore


def per_link_us(sign: Callable[[str], str], links: int, rounds: int) -> float:
    """Median over `rounds` of the mean microseconds one link takes."""
    keys = [f"results/2026/11/29/ocr-{n:08x}/result.json" for n in range(links)]
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for key in keys:
            sign(key)
        figures.append((time.perf_counter() - started) / links * 1e6)
    return statistics.median(figures)


def main() -> None:
    """Print microseconds a link and the ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    store = ResultStore(WorkerSettings(results_bucket="ocr-results", aws_region="eu-west-1"))
    template = store.signer._learn()

    def client_call(key: str) -> str:
        return str(
            store.client.generate_presigned_url(
                "get_object", Params={"Bucket": store.bucket, "Key": key}, ExpiresIn=store.ttl
            )
        )

    def botocore_signer(key: str) -> str:
        request = AWSRequest(method="GET", url=template.base + quote(key, safe="/~"))
        credentials = store.signer.credentials.get_frozen_credentials()
        S3SigV4QueryAuth(credentials, template.service, template.region, expires=store.ttl).add_auth(request)
        return str(request.prepare().url)

    def worker_now(key: str) -> str:
        return store.link(key).url or ""

    ways = {
        "generate_presigned_url": client_call,
        "botocore S3SigV4QueryAuth": botocore_signer,
        "ResultStore.link": worker_now,
    }
    figures = {name: per_link_us(sign, args.links, args.rounds) for name, sign in ways.items()}
    base = figures["generate_presigned_url"]
    print(f"one presigned GET link, median of {args.rounds} rounds of {args.links}:")
    for name, us in figures.items():
        print(f"  {name:<27} {us:7.1f} us  ({us / base:.2f}x generate_presigned_url)")


if __name__ == "__main__":
    main()

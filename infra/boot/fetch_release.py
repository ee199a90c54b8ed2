"""Boot-time fetch of a staged release from S3, standard library only (runs before anything is installed).

    python3 fetch_release.py --bucket B --prefix artifacts/REL/ --region R --dest DIR --include worker/ model/

Reads `manifest.json`, downloads every listed file under the included prefixes, checks its sha256 and
size, and exits non-zero with ONE line starting `ocr boot: FAILED` on the first missing or mismatching
file, or when the release was staged for another Python. Credentials: AWS_ACCESS_KEY_ID/... from the
environment, else the instance role through IMDSv2. AWS_ENDPOINT_URL (boto3's variable) points it at
another S3 API, path-style (the boot rehearsal uses a local one).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
IMDS = "http://169.254.169.254/latest"


class BootError(Exception):
    """A reason to stop the boot, said in one line."""


def imds_credentials() -> dict[str, str]:
    """The instance role's temporary credentials through IMDSv2."""
    put = urllib.request.Request(
        f"{IMDS}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    )
    token = urllib.request.urlopen(put, timeout=5).read().decode()

    def get(path: str) -> str:
        request = urllib.request.Request(f"{IMDS}/{path}", headers={"X-aws-ec2-metadata-token": token})
        return urllib.request.urlopen(request, timeout=5).read().decode()

    role = get("meta-data/iam/security-credentials/").split()[0]
    data = json.loads(get(f"meta-data/iam/security-credentials/{role}"))
    return {"key": data["AccessKeyId"], "secret": data["SecretAccessKey"], "token": data["Token"]}


def credentials() -> dict[str, str]:
    """Environment credentials when set (tests, a deployer's shell), else the instance role."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return {
            "key": os.environ["AWS_ACCESS_KEY_ID"],
            "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
            "token": os.environ.get("AWS_SESSION_TOKEN", ""),
        }
    return imds_credentials()


def signed_get(url: str, region: str, creds: dict[str, str]) -> urllib.request.Request:
    """A GET request signed with AWS Signature Version 4 for S3."""
    parts = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"host": parts.netloc, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    if creds["token"]:
        headers["x-amz-security-token"] = creds["token"]
    names = sorted(headers)
    canonical = "\n".join(
        [
            "GET",
            parts.path or "/",
            parts.query,
            *[f"{n}:{headers[n]}" for n in names],
            "",
            ";".join(names),
            EMPTY_SHA256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + creds["secret"]).encode()
    for piece in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, piece.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds['key']}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return urllib.request.Request(url, headers={k: v for k, v in headers.items() if k != "host"})


class Bucket:
    """GETs from one bucket: virtual-hosted on AWS (through the S3 gateway endpoint), path-style elsewhere."""

    def __init__(self, name: str, region: str) -> None:
        self.name, self.region, self.creds = name, region, credentials()
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "").rstrip("/")
        self.base = f"{endpoint}/{name}" if endpoint else f"https://{name}.s3.{region}.amazonaws.com"

    def open(self, key: str):
        """The response of a GET of `key`; BootError when it is missing or refused."""
        url = f"{self.base}/{urllib.parse.quote(key)}"
        for attempt in range(4):  # network blips while the instance comes up; a 404/403 is final
            try:
                return urllib.request.urlopen(signed_get(url, self.region, self.creds), timeout=60)
            except urllib.error.HTTPError as error:
                if error.code in (403, 404):
                    raise BootError(f"missing artifact s3://{self.name}/{key} (HTTP {error.code})") from None
                reason = f"HTTP {error.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                reason = str(getattr(error, "reason", error))
            time.sleep(2**attempt)
        raise BootError(f"cannot read s3://{self.name}/{key}: {reason}")


def fetch_one(bucket: Bucket, key: str, dest: Path, expected: dict) -> None:
    """Stream one file to disk while hashing it; BootError on a size or checksum mismatch."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with bucket.open(key) as response, open(dest, "wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if digest.hexdigest() != expected["sha256"] or size != expected["size"]:
        dest.unlink()
        raise BootError(
            f"checksum mismatch for {key}: manifest sha256 {expected['sha256'][:16]}... ({expected['size']} B),"
            f" got {digest.hexdigest()[:16]}... ({size} B)"
        )


def fetch(bucket: Bucket, prefix: str, dest: Path, include: list[str], python: str) -> int:
    """Fetch and verify every included file of the release; returns how many."""
    with bucket.open(prefix + "manifest.json") as response:
        manifest = json.loads(response.read())
    staged_for = manifest.get("python", "")
    if python and staged_for and staged_for != python:
        raise BootError(f"the release was staged for Python {staged_for}, this machine has Python {python}")
    files = {k: v for k, v in manifest["files"].items() if any(k.startswith(p) for p in include)}
    if not files:
        raise BootError(f"the manifest lists nothing under {', '.join(include)}")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [pool.submit(fetch_one, bucket, prefix + k, dest / k, v) for k, v in sorted(files.items())]
        try:
            for job in concurrent.futures.as_completed(jobs):
                job.result()
        except BaseException:
            for job in jobs:  # the first failure stops the boot: downloads not yet begun never start
                job.cancel()
            raise
    return len(files)


def main() -> None:
    """Fetch, verify, report one line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True, help="artifacts/<release>/")
    parser.add_argument("--region", required=True)
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument(
        "--include", nargs="+", required=True, help="manifest path prefixes, e.g. worker/ model/"
    )
    parser.add_argument("--python", default="", help="the interpreter's major.minor the release must match")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        count = fetch(Bucket(args.bucket, args.region), args.prefix, args.dest, args.include, args.python)
    except BootError as error:
        sys.stderr.write(f"ocr boot: FAILED {error}\n")
        sys.exit(3)
    except Exception as error:  # one clear line, never a traceback in the boot log
        sys.stderr.write(f"ocr boot: FAILED fetching the release: {type(error).__name__}: {error}\n")
        sys.exit(3)
    sys.stdout.write(
        f"ocr boot: {count} files of {args.prefix} verified in {time.monotonic() - started:.0f} s\n"
    )


if __name__ == "__main__":
    main()

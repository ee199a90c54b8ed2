"""The edge's Lambda zip as Lambda runs it: built by scripts/build_lambda.py, extracted into a task folder, and
next to it the few packages Lambda's Python runtime provides (boto3 and its dependencies), nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")


def build_bundle(out: Path, tree: Path = ROOT) -> Path:
    """Build the zip with `tree`'s own build script (pip downloads its dependencies for Lambda's platform)."""
    subprocess.run([sys.executable, str(tree / "scripts" / "build_lambda.py"), "--out", str(out)], check=True,
                   capture_output=True, timeout=900)  # fmt: skip
    return out


def extract(bundle: Path, folder: Path) -> Path:
    """The zip's contents in `folder` (Lambda's task root)."""
    zipfile.ZipFile(bundle).extractall(folder)
    return folder


def runtime(folder: Path) -> Path:
    """`folder` holding links to this environment's copies of what Lambda's runtime provides."""
    folder.mkdir()
    boto3_init = __import__("boto3").__file__
    assert boto3_init is not None, "boto3 is installed as a package"
    site = Path(boto3_init).parents[1]
    for name in RUNTIME_PACKAGES:
        if (site / name).exists():
            (folder / name).symlink_to(site / name)
    return folder

"""Stage a release once, from a machine with internet; instances then boot from it offline.

Writes s3://BUCKET/artifacts/<release>/:
  model/...                 the model snapshot at a pinned revision
  worker/wheels/*.whl       the project, CUDA torch, a prebuilt flash-attn, every dependency, pip
  worker/requirements.txt   every wheel pinned (name==version): what boot installs with --no-index
  web/wheels/*.whl, web/requirements.txt, web/frontend.tar.gz   the web app
  manifest.json             release, Python, model id/revision, sha256 and size of every file (last)

    .venv/bin/python scripts/stage_artifacts.py --bucket my-org-ocr-results --release 2026-11-29-v0.1.0 \\
        --model-revision <40-hex commit> \\
        --flash-attn-wheel ./flash_attn-<ver>+cu12torch<X.Y>cxx11abiTRUE-cp312-cp312-linux_x86_64.whl

Defaults target the worker AMI: Python 3.12 on manylinux x86_64. A release is immutable: staging
into an existing release fails unless --replace.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"]
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def extra_requirements(extras: list[str]) -> list[str]:
    """The base dependencies plus those of the named extras, as pyproject.toml declares them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = list(project["dependencies"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return found


def wheel_pins(wheels: Path) -> list[str]:
    """name==version for every wheel in a folder (the exact set boot installs)."""
    pins = []
    for path in sorted(wheels.glob("*.whl")):
        match = WHEEL_NAME.match(path.name)
        if not match:
            raise SystemExit(f"not a wheel file name: {path.name}")
        pins.append(f"{match['name'].replace('_', '-').lower()}=={match['version']}")
    return pins


def check_flash_attn(wheel: Path, python: str, requirements: list[str]) -> None:
    """The prebuilt flash-attn must be for this Python and for the torch the extra pins."""
    tag = "cp" + python.replace(".", "")
    torch = next((r.split("==")[1] for r in requirements if r.startswith("torch==")), None)
    if f"-{tag}-" not in wheel.name:
        raise SystemExit(f"{wheel.name} is not built for Python {python} ({tag})")
    # The project's release wheels name their torch (+cu12torch2.13...); a wheel built locally with
    # `pip wheel` against the pinned torch carries no such tag and is taken as it is.
    built_for = re.search(r"torch(\d+\.\d+)", wheel.name)
    if torch and built_for and built_for[1] != ".".join(torch.split(".")[:2]):
        raise SystemExit(f"{wheel.name} is built for torch {built_for[1]}, the worker-gpu extra pins {torch}")


def build_wheelhouse(out: Path, extras: list[str], python: str, host: bool, find_links: list[Path]) -> None:
    """The project's wheel, every dependency as a binary wheel for the target, and pip; plus the pins."""
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)], check=True)
    target = [] if host else ["--python-version", python, "--implementation", "cp"]
    target += [] if host else [arg for p in PLATFORMS for arg in ("--platform", p)]
    links = [arg for link in find_links for arg in ("--find-links", str(link))]
    requirements = [*extra_requirements(extras), "pip"]
    # Binary wheels only: an instance never compiles anything at boot.
    subprocess.run(
        [
            *pip,
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
            str(wheels),
            *target,
            *links,
            *requirements,
        ],
        check=True,
    )
    (out / "requirements.txt").write_text("\n".join(wheel_pins(wheels)) + "\n")


def stage_model(out: Path, model_id: str, revision: str | None, model_dir: Path | None) -> dict:
    """The snapshot at a pinned revision (or a folder already holding one)."""
    if model_dir is None:
        if not revision or not re.fullmatch(r"[0-9a-f]{40}", revision):
            raise SystemExit("--model-revision must be a full 40-hex commit of the model repository (pinned)")
        from huggingface_hub import snapshot_download

        model_dir = Path(snapshot_download(model_id, revision=revision, local_dir=out / ".download"))
    shutil.copytree(
        model_dir, out, ignore=shutil.ignore_patterns(".cache", ".git*", ".download"), dirs_exist_ok=True
    )
    shutil.rmtree(out / ".download", ignore_errors=True)
    return {"id": model_id, "revision": revision or "local"}


def frontend_archive(out: Path) -> None:
    """The web app's sources (rxconfig and the app module), without build output."""
    out.parent.mkdir(parents=True, exist_ok=True)
    skip = {".web", "node_modules", "__pycache__", ".states"}
    with tarfile.open(out, "w:gz") as archive:
        archive.add(
            ROOT / "frontend", arcname=".", filter=lambda i: None if skip & set(Path(i.name).parts) else i
        )


def sha256(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(folder: Path, release: str, python: str, model: dict) -> dict:
    """Every staged file with its sha256 and size."""
    files = {
        p.relative_to(folder).as_posix(): {"sha256": sha256(p), "size": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return {"release": release, "created": created, "python": python, "model": model, "files": files}


def upload(
    folder: Path, bucket: str, prefix: str, endpoint_url: str | None, region: str, replace: bool
) -> None:
    """Upload every file, manifest.json last: a boot never sees a manifest before its files."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    if not replace and s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
        raise SystemExit(
            f"s3://{bucket}/{prefix} exists: releases are immutable (stage a new name, or --replace)"
        )
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
    for path in [*paths, folder / "manifest.json"]:
        s3.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())


def stage(args: argparse.Namespace) -> Path:
    """Build the release folder, write its manifest, upload it; returns the folder."""
    folder = args.out or Path(tempfile.mkdtemp(prefix=f"release-{args.release}-"))
    python = f"{sys.version_info[0]}.{sys.version_info[1]}" if args.host else args.python_version
    model = stage_model(folder / "model", args.model_id, args.model_revision, args.model_dir)
    extras = args.worker_extras.split(",")
    links = list(args.find_links)
    if "flash-attn" in extras:
        if not args.flash_attn_wheel:
            raise SystemExit(
                "--flash-attn-wheel: PyPI has only flash-attn's source; stage its prebuilt wheel"
            )
        check_flash_attn(args.flash_attn_wheel, python, extra_requirements(extras))
        links.append(args.flash_attn_wheel.parent)
    build_wheelhouse(folder / "worker", extras, python, args.host, links)
    if args.web_extras:
        build_wheelhouse(folder / "web", args.web_extras.split(","), python, args.host, list(args.find_links))
        frontend_archive(folder / "web" / "frontend.tar.gz")
    (folder / "manifest.json").write_text(json.dumps(manifest(folder, args.release, python, model), indent=1))
    if args.bucket:
        prefix = f"{args.prefix}{args.release}/"
        upload(folder, args.bucket, prefix, args.endpoint_url, args.region, args.replace)
        print(
            f"staged s3://{args.bucket}/{prefix} ({len(json.loads((folder / 'manifest.json').read_text())['files'])} files)"
        )
    return folder


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--release", required=True, help="a new name, e.g. 2026-11-29-v0.1.0 (Terraform's `release`)"
    )
    p.add_argument("--bucket", help="the deployment's bucket (no upload without it)")
    p.add_argument("--prefix", default="artifacts/")
    p.add_argument("--region", default="us-west-2")
    p.add_argument("--endpoint-url", help="another S3 API (tests)")
    p.add_argument("--out", type=Path, help="local folder of the release (default: a temporary one)")
    p.add_argument("--model-id", default="deepseek-community/DeepSeek-OCR-2")
    p.add_argument("--model-revision", help="full commit of the model repository")
    p.add_argument(
        "--model-dir", type=Path, help="a folder holding the model already (instead of downloading)"
    )
    p.add_argument("--worker-extras", default="worker-gpu,flash-attn")
    p.add_argument("--web-extras", default="frontend", help="empty: no web app")
    p.add_argument(
        "--flash-attn-wheel", type=Path, help="flash-attn's prebuilt wheel for this Python/torch/CUDA"
    )
    p.add_argument("--python-version", default="3.12", help="the instances' Python (Ubuntu 24.04: 3.12)")
    p.add_argument("--host", action="store_true", help="wheels for this machine instead (the boot rehearsal)")
    p.add_argument("--find-links", type=Path, action="append", default=[], help="extra wheel folders")
    p.add_argument("--replace", action="store_true", help="overwrite an existing release")
    return p


if __name__ == "__main__":
    stage(parser().parse_args())

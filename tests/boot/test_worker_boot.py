"""The worker's boot, rehearsed for real: its user data (rendered from the .tftpl) against a local S3 API
holding a release staged by scripts/stage_artifacts.py; offline install into a fresh venv; the unit's
ExecStart started without systemd; /health turns 200. Tampered or missing artifacts stop the boot."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from scripts.local_stack import free_port
from tests.boot.conftest import RELEASE, SECRET_VALUE, clean_env, run_boot

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PREFIX = f"artifacts/{RELEASE}/"


def failures(log: str) -> list[str]:
    return [line for line in log.splitlines() if "ocr boot: FAILED" in line]


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


def exec_start(unit: Path) -> list[str]:
    (line,) = [x for x in unit.read_text().splitlines() if x.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


@pytest.fixture(scope="module")
def booted(staged_release, tmp_path_factory):
    """One boot of a fresh root from the staged release (the slow part: an offline install)."""
    port = free_port()
    boot = run_boot(staged_release.s3, tmp_path_factory.mktemp("instance"), port)
    print(f"\nboot (fetch, verify, offline install) took {boot.seconds:.1f} s")
    assert boot.result.returncode == 0, boot.log[-4000:]
    return boot, port


def test_the_release_manifest_covers_every_staged_file(staged_release):
    s3 = staged_release.s3
    manifest = json.loads(
        s3.client().get_object(Bucket=s3.bucket, Key=PREFIX + "manifest.json")["Body"].read()
    )
    keys = {k.removeprefix(PREFIX) for k in s3.object_keys(PREFIX)} - {"manifest.json"}
    assert set(manifest["files"]) == keys
    assert manifest["python"] and manifest["model"]["revision"] == "local"
    assert any(k.startswith("worker/wheels/torch-") for k in keys) and "worker/requirements.txt" in keys
    assert any(k.startswith("model/") and k.endswith(".safetensors") for k in keys)
    pins = (staged_release.folder / "worker" / "requirements.txt").read_text().split()
    assert all("==" in pin for pin in pins) and any(p.startswith("deepseek-ocr-service==") for p in pins)


def test_boot_verifies_installs_offline_and_writes_the_environment(booted):
    boot, port = booted
    assert "files of artifacts/rehearsal-1/ verified" in boot.log and not failures(boot.log)
    env = read_env_file(boot.env_file)
    assert env["WORKER_SHARED_SECRET"] == SECRET_VALUE  # read from SSM at boot
    assert env["REQUEST_TIMEOUT_S"] == "25" and env["PORT"] == str(port) and env["HF_HUB_OFFLINE"] == "1"
    assert env["DEEPSEEK_MODEL"] == str(boot.root / "opt" / "releases" / RELEASE / "model")
    assert Path(env["SPOOL_DIR"]).is_dir() and Path(env["HF_HOME"]).is_dir()
    assert oct(boot.env_file.stat().st_mode & 0o777) == "0o600"  # the secret is root's only
    assert SECRET_VALUE not in boot.log and SECRET_VALUE not in (boot.root / "boot.log").read_text()
    assert exec_start(boot.unit) == [str(boot.root / "opt" / "venv" / "bin" / "python"), "-m", "gpu_worker"]


def test_the_written_unit_passes_systemd_analyze_verify(booted):
    boot, _ = booted
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed here")
    result = subprocess.run(["systemd-analyze", "verify", str(boot.unit)], capture_output=True, text=True)
    output = result.stdout + result.stderr
    # Exit 1 on a fatal problem (e.g. ExecStart not executable); unknown keys are only warned about.
    assert result.returncode == 0 and "ocr-worker.service" not in output, output


def test_the_units_exec_start_serves_health_200(booted):
    boot, port = booted
    env = {**clean_env(), **read_env_file(boot.env_file)}
    process = subprocess.Popen(
        exec_start(boot.unit),
        env=env,
        cwd=boot.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    status, body = None, {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None and status != 200:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                status, body = answer.status_code, answer.json()
            except httpx.TransportError:
                pass
            if status != 200:
                time.sleep(1)
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
    assert status == 200, (
        f"/health never turned 200 (last {status}, exit {process.returncode}):\n{output[-3000:]}"
    )
    assert "deepseek" in json.dumps(body).lower()  # the tiny model from the release, loaded and run once


@pytest.fixture
def restore(staged_release):
    """The local S3 API; the keys a test breaks (listed in `restore.broken`) are put back afterwards."""
    s3 = staged_release.s3
    s3.broken = []
    yield s3
    for key in s3.broken:
        path = staged_release.folder / key.removeprefix(PREFIX)
        s3.client().put_object(Bucket=s3.bucket, Key=key, Body=path.read_bytes())


def project_wheel_key(staged_release) -> str:
    (wheel,) = (staged_release.folder / "worker" / "wheels").glob("deepseek_ocr_service-*.whl")
    return PREFIX + wheel.relative_to(staged_release.folder).as_posix()


def test_a_tampered_wheel_stops_the_boot_before_installing(staged_release, restore, tmp_path):
    key = project_wheel_key(staged_release)
    restore.broken.append(key)
    original = restore.client().get_object(Bucket=restore.bucket, Key=key)["Body"].read()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF  # one flipped byte, same size
    restore.client().put_object(Bucket=restore.bucket, Key=key, Body=bytes(tampered))
    boot = run_boot(restore, tmp_path, free_port())
    assert boot.result.returncode != 0
    (line,) = failures(boot.log)
    assert f"checksum mismatch for {key}" in line
    assert not (tmp_path / "opt" / "venv").exists() and not (tmp_path / "etc" / "ocr-worker.env").exists()


def test_a_missing_artifact_stops_the_boot_with_one_line(staged_release, restore, tmp_path):
    key = PREFIX + "worker/requirements.txt"
    restore.broken.append(key)
    restore.client().delete_object(Bucket=restore.bucket, Key=key)
    boot = run_boot(restore, tmp_path, free_port())
    assert boot.result.returncode != 0
    (line,) = failures(boot.log)
    assert f"missing artifact s3://{restore.bucket}/{key}" in line
    assert not (tmp_path / "opt" / "venv").exists()


def test_a_release_for_another_python_stops_the_boot(staged_release, restore, tmp_path):
    key = PREFIX + "manifest.json"
    restore.broken.append(key)
    manifest = json.loads((staged_release.folder / "manifest.json").read_text())
    restore.client().put_object(
        Bucket=restore.bucket, Key=key, Body=json.dumps({**manifest, "python": "3.10"})
    )
    boot = run_boot(restore, tmp_path, free_port())
    (line,) = failures(boot.log)
    assert "staged for Python 3.10" in line and boot.result.returncode != 0

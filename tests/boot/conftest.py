"""The boot rehearsal's fixtures: a local S3/SSM API, a release staged by scripts/stage_artifacts.py from
this machine's CPU wheels and the tiny model, and the worker's real user data rendered for a test root."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.boot.render import BOOT, ROOT, render, worker_variables
from tests.utils.servers import AWS_ENV, LocalS3

RELEASE = "rehearsal-1"
SECRET_PARAMETER = "/ocr/test/worker-shared-secret"
SECRET_VALUE = "rehearsal-shared-secret-0123456789abcdef"


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without this checkout's venv or Python paths. Its pip settings stay:
    the boot script itself must ignore them (it installs only from the release)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(AWS_ENV, PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def pip_find_links() -> str:
    """The wheel folders this machine's pip already uses (its environment, else its configuration)."""
    if os.environ.get("PIP_FIND_LINKS"):
        return os.environ["PIP_FIND_LINKS"]
    found = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.find-links"], capture_output=True, text=True
    )
    return found.stdout.strip() if found.returncode == 0 else ""


@pytest.fixture(scope="session")
def boot_s3():
    """moto on loopback: the deployment's bucket, and the shared secret as an SSM SecureString."""
    import boto3

    s3 = LocalS3(bucket="rehearsal-ocr-results").start()
    ssm = boto3.client("ssm", endpoint_url=s3.endpoint, region_name="us-west-2")
    ssm.put_parameter(Name=SECRET_PARAMETER, Value=SECRET_VALUE, Type="SecureString")
    yield s3
    s3.stop()


@pytest.fixture(scope="session")
def wheel_cache(request: pytest.FixtureRequest) -> Path:
    """Dependency wheels kept between sessions (pytest's cache), keyed by pyproject and Python."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + sys.version.encode()).hexdigest()[:12]
    return Path(request.config.cache.mkdir(f"boot-wheels-{key}"))


@dataclass
class Staged:
    """A release staged into the local S3 API, and how long staging took."""

    s3: LocalS3
    folder: Path
    seconds: float


@pytest.fixture(scope="session")
def staged_release(boot_s3, wheel_cache, tiny_model_dir, tmp_path_factory) -> Staged:
    """scripts/stage_artifacts.py, run as a deployer would, for this machine (--host) and the tiny model."""
    folder = tmp_path_factory.mktemp("release")
    complete = (wheel_cache / ".complete").exists()
    command = [
        sys.executable, str(ROOT / "scripts" / "stage_artifacts.py"), "--host", "--release", RELEASE,
        "--bucket", boot_s3.bucket, "--endpoint-url", boot_s3.endpoint, "--out", str(folder),
        "--model-dir", str(tiny_model_dir), "--worker-extras", "worker-cpu", "--web-extras", "",
    ]  # fmt: skip
    # Staging runs with this machine's pip configuration (the deployer's), plus the cache as a wheel
    # folder; the first session downloads from the package registry, later ones stay offline.
    env = {**os.environ, **AWS_ENV, "PIP_FIND_LINKS": f"{pip_find_links()} {wheel_cache}".strip()}
    if complete:
        env["PIP_NO_INDEX"] = "1"
    started = time.monotonic()
    subprocess.run(command, check=True, env=env, cwd=ROOT, timeout=1200)
    seconds = time.monotonic() - started
    if not complete:
        for wheel in (folder / "worker" / "wheels").glob("*.whl"):
            if not wheel.name.startswith("deepseek_ocr_service"):
                shutil.copy(wheel, wheel_cache / wheel.name)
        (wheel_cache / ".complete").touch()
    print(
        f"\nstaging the rehearsal release took {seconds:.1f} s ({'cached' if complete else 'from the registry'})"
    )
    return Staged(boot_s3, folder, seconds)


@dataclass
class Boot:
    """One run of the rendered worker user data in a test root."""

    root: Path
    result: subprocess.CompletedProcess[str]
    seconds: float

    @property
    def env_file(self) -> Path:
        return self.root / "etc" / "ocr-worker.env"

    @property
    def unit(self) -> Path:
        return self.root / "systemd" / "ocr-worker.service"

    @property
    def log(self) -> str:
        return self.result.stdout + self.result.stderr


def render_worker_boot(s3: LocalS3, port: int) -> str:
    """The worker's user data exactly as Terraform renders it, with this test's values."""
    env = {
        "AWS_REGION": "us-west-2", "HOST": "127.0.0.1", "OCR_ENGINE": "deepseek", "PORT": str(port),
        "REQUEST_TIMEOUT_S": "25", "RESULTS_BUCKET": s3.bucket, "RESULTS_PREFIX": "results/",
        "S3_ENDPOINT_URL": s3.endpoint, "UPLOAD_PREFIX": "uploads/",
    }  # fmt: skip
    return render(
        BOOT / "worker_user_data.sh.tftpl",
        worker_variables(
            release=RELEASE, bucket=s3.bucket, artifacts_prefix="artifacts/", region="us-west-2",
            secret_parameter=SECRET_PARAMETER, require_gpu="0", stop_timeout_s="35",
            env_file="\n".join(f"{k}={env[k]}" for k in sorted(env)),
        ),
    )  # fmt: skip


def run_boot(s3: LocalS3, root: Path, port: int) -> Boot:
    """Run the boot script as cloud-init would, with paths under `root` and no systemd."""
    root.mkdir(parents=True, exist_ok=True)
    script = root / "user-data.sh"
    script.write_text(render_worker_boot(s3, port))
    env = clean_env(
        OCR_ROOT=str(root / "opt"), OCR_ENV_FILE=str(root / "etc" / "ocr-worker.env"),
        OCR_UNIT_DIR=str(root / "systemd"), OCR_LOG_DIR=str(root / "log"), OCR_BOOT_LOG=str(root / "boot.log"),
        OCR_BIN_DIR=str(root / "bin"), OCR_SERVICE_USER=subprocess.check_output(["id", "-un"], text=True).strip(),
        OCR_SYSTEMCTL="true", OCR_PYTHON=sys._base_executable, AWS_ENDPOINT_URL=s3.endpoint,
    )  # fmt: skip
    (root / "etc").mkdir(exist_ok=True)
    (root / "bin").mkdir(exist_ok=True)
    started = time.monotonic()
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=900)
    return Boot(root, result, time.monotonic() - started)

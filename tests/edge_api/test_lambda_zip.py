"""The Lambda zip: built for Lambda's platform, no heavy libraries, imports with only what Lambda provides."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("lambda") / "edge_lambda.zip"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_lambda.py"), "--out", str(out)], check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    return out


def test_zip_holds_the_edge_and_the_contract_and_nothing_heavy(bundle):
    names = zipfile.ZipFile(bundle).namelist()
    assert "edge_api/handler.py" in names and "edge_api/authorizer.py" in names
    assert "gpu_worker/protocol/__init__.py" in names and "gpu_worker/__init__.py" in names
    assert not [
        n
        for n in names
        if n.startswith("gpu_worker/")
        and n != "gpu_worker/__init__.py"
        and not n.startswith("gpu_worker/protocol/")
    ]
    for heavy in ("torch/", "transformers/", "reflex/", "PIL/", "numpy/", "boto3/"):
        assert not any(n.startswith(heavy) for n in names), heavy
    assert bundle.stat().st_size < 15 * 2**20


def test_both_handlers_import_with_only_the_zip_and_the_runtime(bundle, tmp_path):
    code_dir = tmp_path / "task"
    zipfile.ZipFile(bundle).extractall(code_dir)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    site = Path(__import__("boto3").__file__).parents[1]
    for name in RUNTIME_PACKAGES:
        if (site / name).exists():
            (runtime / name).symlink_to(site / name)
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import edge_api.handler, edge_api.authorizer\n"
        "assert edge_api.handler.__file__.startswith(sys.argv[1])\n"
        "bad = [m for m in ('torch', 'transformers', 'PIL', 'numpy', 'reflex') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-west-2", "WORKER_URL": "http://worker.internal"}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(code_dir), str(runtime)],
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.stdout.strip() == "ok", result.stderr

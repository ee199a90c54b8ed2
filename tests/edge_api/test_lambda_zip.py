"""The Lambda zip: built for Lambda's platform, no heavy libraries, imports with only what Lambda provides."""

import subprocess
import sys
import zipfile

import pytest

from tests.utils.lambda_zip import extract, runtime

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(lambda_bundle):
    return lambda_bundle


def test_zip_holds_the_edge_and_the_contract_and_nothing_heavy(bundle):
    names = zipfile.ZipFile(bundle).namelist()
    assert "edge_api/handler.py" in names and "edge_api/authorizer.py" in names
    assert "gpu_worker/protocol/__init__.py" in names and "gpu_worker/__init__.py" in names
    shared = {f"gpu_worker/{name}.py" for name in ("__init__", "limits")}
    shared |= {f"gpu_worker/__pycache__/{name}.cpython-311.pyc" for name in ("__init__", "limits")}
    assert "gpu_worker/limits.py" in names
    assert not [
        n
        for n in names
        if n.startswith("gpu_worker/") and n not in shared and not n.startswith("gpu_worker/protocol/")
    ]
    for heavy in ("torch/", "transformers/", "reflex/", "PIL/", "numpy/", "boto3/", "uvicorn/"):
        assert not any(n.startswith(heavy) for n in names), heavy
    assert bundle.stat().st_size < 15 * 2**20


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="bytecode is built only on Lambda's Python (3.11)"
)
def test_zip_carries_bytecode_for_every_module(bundle):
    names = set(zipfile.ZipFile(bundle).namelist())
    sources = [n for n in names if n.endswith(".py") and "/" in n and not n.startswith("bin/")]
    missing = [n for n in sources if cached(n) not in names]
    assert not missing, missing[:10]


def cached(source: str) -> str:
    """Where Python 3.11 looks for a module's bytecode."""
    folder, _, name = source.rpartition("/")
    return f"{folder}/__pycache__/{name[:-3]}.cpython-311.pyc"


def test_both_handlers_import_with_only_the_zip_and_the_runtime(bundle, tmp_path):
    code_dir, runtime_dir = extract(bundle, tmp_path / "task"), runtime(tmp_path / "runtime")
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import edge_api.handler, edge_api.authorizer\n"
        "assert edge_api.handler.__file__.startswith(sys.argv[1])\n"
        # Lambda's code folder is read-only: the bytecode must come from the zip, and be used as it is.
        "import fastapi, os\n"
        "assert sys.version_info[:2] != (3, 11) or all(os.path.exists(m.__cached__) for m in (edge_api.handler, fastapi))\n"
        "assert 'boto3' not in sys.modules and 'httpx' not in sys.modules, 'imported before a route needs it'\n"
        "bad = [m for m in ('torch', 'transformers', 'PIL', 'numpy', 'reflex') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-west-2", "WORKER_URL": "http://worker.internal"}
    result = subprocess.run([sys.executable, "-B", "-I", "-S", "-c", script, str(code_dir), str(runtime_dir)],
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.stdout.strip() == "ok", result.stderr

"""The Lambda zip: built for Lambda's platform, no heavy libraries, imports with only what Lambda provides."""

import json
import subprocess
import sys
import zipfile

import pytest
from PIL import Image

from scripts.local_stack import free_port
from tests.utils.apigw import rest_event
from tests.utils.documents import to_bytes
from tests.utils.lambda_zip import extract, runtime
from tests.utils.requests import chat_body, data_url

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(lambda_bundle):
    return lambda_bundle


def test_zip_holds_the_edge_and_the_contract_and_nothing_heavy(bundle):
    names = zipfile.ZipFile(bundle).namelist()
    assert "edge_api/handler.py" in names and "edge_api/authorizer.py" in names
    assert "gpu_worker/protocol/__init__.py" in names and "gpu_worker/__init__.py" in names
    shared = {f"gpu_worker/{name}.py" for name in ("__init__", "limits", "presign")}
    shared |= {f"gpu_worker/__pycache__/{name}.cpython-311.pyc" for name in ("__init__", "limits", "presign")}
    assert "gpu_worker/limits.py" in names and "gpu_worker/presign.py" in names
    assert not [
        n
        for n in names
        if n.startswith("gpu_worker/") and n not in shared and not n.startswith("gpu_worker/protocol/")
    ]
    unwanted = (
        "torch/",
        "transformers/",
        "reflex/",
        "PIL/",
        "numpy/",
        "boto3/",
        "uvicorn/",
        "httptools/",
        "pydantic/v1/",
    )
    for heavy in unwanted:
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
        # The collector was off while the handler loaded, and is on again with what the load built frozen.
        "import gc\n"
        "assert gc.isenabled() and gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
        "bad = [m for m in ('torch', 'transformers', 'PIL', 'numpy', 'reflex') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-west-2", "WORKER_URL": "http://worker.internal"}
    result = subprocess.run([sys.executable, "-B", "-I", "-S", "-c", script, str(code_dir), str(runtime_dir)],
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.stdout.strip() == "ok", result.stderr


# Runs the zip's handler on API Gateway events read from stdin; writes [status, body] per event to argv[3]
# (stdout is the handler's log).
DRIVE = """
import json, sys, types
sys.path[:0] = sys.argv[1:3]
import edge_api.handler
context = types.SimpleNamespace(function_name="ocr-edge-api", function_version="$LATEST", memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:ocr-edge-api", aws_request_id="r-1",
    log_group_name="/aws/lambda/ocr-edge-api", log_stream_name="s", get_remaining_time_in_millis=lambda: 115000)
answers = [edge_api.handler.handler(event, context) for event in json.load(sys.stdin)]
with open(sys.argv[3], "w") as out:
    json.dump([[a["statusCode"], a["body"]] for a in answers], out)
"""


def test_routes_of_each_kind_answer_from_the_zip_without_pydantic_v1(bundle, tmp_path):
    """The zip leaves out pydantic.v1: every route's schema is built (/openapi.json), and requests run through
    validation, forwarding (worker down), upload signing, a result lookup (S3 down) and the jobs checks, from the
    zip as Lambda runs it (only the zip and the runtime's boto3, no bytecode written). Each gets its right answer."""
    code_dir, runtime_dir = extract(bundle, tmp_path / "task"), runtime(tmp_path / "runtime")
    png = to_bytes(Image.new("RGB", (32, 32), "white"), "PNG")
    post = {"Content-Type": "application/json"}
    upload = json.dumps({"content_type": "image/png", "size": 100})
    bad_job = json.dumps({"file": "s3://ocr-results/uploads/k/x", "bogus": 1})
    calls = [  # (event, the statuses that are right)
        (rest_event("GET", "/health", principal=None), {200}),
        (rest_event("GET", "/openapi.json", principal=None), {200}),
        (rest_event("GET", "/docs", principal=None), {200}),
        (rest_event("POST", "/v1/chat/completions", "{}", post), {422}),
        (rest_event("POST", "/v1/chat/completions", json.dumps(chat_body(data_url(png))), post), {502, 503}),
        (rest_event("GET", "/v1/models"), {502, 503}),
        (rest_event("GET", "/v1/results/ocr-0123456789abcdef"), {503}),
        (rest_event("POST", "/v1/uploads", upload, post), {200}),
        (rest_event("POST", "/v1/jobs", bad_job, post), {422}),
    ]
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "secret", "WORKER_URL": f"http://127.0.0.1:{free_port()}",
           "RESULTS_BUCKET": "ocr-results", "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
           "JOBS_TABLE": "ocr-jobs", "POWERTOOLS_METRICS_NAMESPACE": "DeepSeekOCR",
           "JOBS_QUEUE_URL": "https://sqs.us-west-2.amazonaws.com/123456789012/ocr-jobs"}  # fmt: skip
    answers_file = tmp_path / "answers.json"
    result = subprocess.run([sys.executable, "-B", "-I", "-S", "-c", DRIVE, str(code_dir), str(runtime_dir),
                             str(answers_file)], input=json.dumps([event for event, _ in calls]),
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(answers_file.read_text())
    for (event, right), (status, body) in zip(calls, answers, strict=True):
        assert status in right, (event["httpMethod"], event["path"], status, body[:500])
        if status >= 400:
            assert json.loads(body)["error"]["message"], body
    assert "/v1/chat/completions" in json.loads(answers[1][1])["paths"]


def test_the_authorizer_loads_only_the_standard_library(bundle, tmp_path):
    """The authorizer runs before every request (no cache): its cold start must not pay for FastAPI and pydantic,
    which only the API function uses."""
    code_dir = extract(bundle, tmp_path / "task")
    script = (  # of the zip's modules, only edge_api's own load
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "import edge_api.authorizer\n"
        "zipped = {name for name, m in sys.modules.items() if (getattr(m, '__file__', None) or '').startswith(sys.argv[1])}\n"
        "loaded = sorted(name for name in zipped if name.split('.')[0] != 'edge_api')\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-B", "-I", "-S", "-c", script, str(code_dir)],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)  # fmt: skip
    assert result.stdout.strip() == "ok", result.stderr

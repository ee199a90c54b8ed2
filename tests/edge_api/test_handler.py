"""The Lambda handler in-process with API Gateway REST proxy events, forwarding to a real worker."""

import base64
import importlib
import json

import pytest
from PIL import Image

from tests.utils.apigw import LambdaContext, rest_event
from tests.utils.documents import render_document, to_bytes
from tests.utils.requests import chat_body, data_url
from tests.utils.servers import WORKER_SECRET

pytestmark = pytest.mark.integration
SECRET = "sk-secret-never-logged-42"


@pytest.fixture(scope="module")
def lambda_handler(rapid_worker, local_s3):
    patch = pytest.MonkeyPatch()
    for name, value in {"WORKER_URL": rapid_worker.url, "RESULTS_BUCKET": local_s3.bucket,
                        "S3_ENDPOINT_URL": local_s3.endpoint, "MAX_BODY_BYTES": "300000",
                        "POWERTOOLS_SERVICE_NAME": "edge-api", "POWERTOOLS_METRICS_NAMESPACE": "DeepSeekOCR",
                        "AWS_LAMBDA_FUNCTION_NAME": "ocr-edge-api", "WORKER_SHARED_SECRET": WORKER_SECRET}.items():  # fmt: skip
        patch.setenv(name, value)
    patch.delenv("LOCAL_API_KEYS", raising=False)
    import edge_api.handler as module

    yield importlib.reload(module).handler
    patch.undo()


@pytest.fixture(scope="module")
def page():
    return render_document(["Lambda handler page", "second line here"]).png()


def invoke(handler, event):
    result = handler(event, LambdaContext())
    body = result["body"]
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return (
        result["statusCode"],
        result["headers"] | {k: v[0] for k, v in result.get("multiValueHeaders", {}).items()},
        body,
    )


def test_valid_request_is_forwarded_and_answered(lambda_handler, page, capfd, caplog):
    event = rest_event("POST", "/v1/chat/completions", json.dumps(chat_body(data_url(page), task="ocr")),
                       {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"})  # fmt: skip
    status, headers, body = invoke(lambda_handler, event)
    assert status == 200, body
    reply = json.loads(body)
    assert reply["choices"][0]["message"]["content"].splitlines() == [
        "Lambda handler page",
        "second line here",
    ]
    assert reply["id"] == event["requestContext"]["requestId"]  # the API Gateway request id goes through
    assert headers["x-request-id"] == reply["id"]
    formatter = importlib.import_module("edge_api.handler").logger.registered_formatter
    logs = capfd.readouterr().out + "\n".join(formatter.format(r) for r in caplog.records)
    assert SECRET not in logs and "Bearer" not in logs and WORKER_SECRET not in logs
    assert "key-0123456789abcdef" in logs and event["requestContext"]["requestId"] in logs
    assert '"_aws"' in logs  # EMF metrics were flushed


def test_base64_body(lambda_handler, page):
    event = rest_event("POST", "/v1/chat/completions", json.dumps(chat_body(data_url(page), task="ocr")),
                       {"Content-Type": "application/json"}, base64_body=True)  # fmt: skip
    status, _, body = invoke(lambda_handler, event)
    assert status == 200 and "Lambda handler page" in json.loads(body)["choices"][0]["message"]["content"]


def test_malformed_json_is_400(lambda_handler):
    status, _, body = invoke(lambda_handler, rest_event("POST", "/v1/chat/completions", "{oops"))
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_json"


def test_oversized_body_is_413_with_the_upload_hint(lambda_handler):
    big = to_bytes(Image.effect_noise((400, 400), 90).convert("RGB"), "PNG")
    status, _, body = invoke(
        lambda_handler, rest_event("POST", "/v1/chat/completions", json.dumps(chat_body(data_url(big))))
    )
    assert status == 413 and "/v1/uploads" in json.loads(body)["error"]["message"]


def test_unknown_route_is_404_in_the_error_shape(lambda_handler):
    status, _, body = invoke(lambda_handler, rest_event("GET", "/v1/engines"))
    assert status == 404 and json.loads(body)["error"]["type"] == "not_found_error"


def test_health_and_models(lambda_handler):
    status, _, body = invoke(lambda_handler, rest_event("GET", "/health", principal=None))
    assert status == 200 and json.loads(body) == {"status": "ok", "worker": "ok"}
    status, _, body = invoke(lambda_handler, rest_event("GET", "/v1/models"))
    assert status == 200 and json.loads(body)["data"][0]["id"] == "rapidocr"


def test_without_the_authorizer_and_without_local_keys_everything_is_refused(lambda_handler, page):
    event = rest_event("POST", "/v1/chat/completions", json.dumps(chat_body(data_url(page))), principal=None)
    assert invoke(lambda_handler, event)[0] == 401
    event["headers"]["x-api-key"] = "guess"
    assert invoke(lambda_handler, event)[0] == 403


def test_stream_is_buffered_into_one_sse_body(lambda_handler, page):
    event = rest_event(
        "POST", "/v1/chat/completions", json.dumps(chat_body(data_url(page), task="ocr", stream=True))
    )
    status, headers, body = invoke(lambda_handler, event)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert body.rstrip().endswith("data: [DONE]") and '"ocr"' in body


def test_an_event_without_headers_or_body_is_answered_not_crashed(lambda_handler):
    event = rest_event("POST", "/v1/chat/completions", None, principal=None)
    event["headers"] = None
    event["multiValueHeaders"] = None
    status, _, body = invoke(lambda_handler, event)
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
    event = rest_event("POST", "/v1/chat/completions", None)
    status, _, body = invoke(lambda_handler, event)
    assert status == 422 and json.loads(body)["error"]["type"] == "invalid_request_error"

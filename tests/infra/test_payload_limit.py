"""MAX_BODY_BYTES, as Terraform sets it on the Lambda, leaves room for the API Gateway event around the
body inside Lambda's 6 MB request payload, so an accepted-size body is never refused before the edge."""

from __future__ import annotations

import base64
import json

from tests.infra.test_hcl import INFRA, parse
from tests.utils.apigw import rest_event

LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024  # synchronous invocation request payload


def terraform_max_body_bytes() -> int:
    """local.lambda_payload_limit_bytes - var.event_envelope_bytes, read from the edge module."""
    edge = parse(INFRA / "modules" / "edge")
    locals_ = {k: v for block in edge["locals"] for k, v in block.items()}
    variables = {n: b for block in edge["variable"] for n, b in block.items()}
    assert locals_["max_body_bytes"] == "${local.lambda_payload_limit_bytes - var.event_envelope_bytes}"
    assert locals_["lambda_payload_limit_bytes"] == LAMBDA_PAYLOAD_LIMIT
    return LAMBDA_PAYLOAD_LIMIT - variables["event_envelope_bytes"]["default"]


def chat_body(size: int) -> str:
    """An OpenAI chat request carrying a base64 PNG data URL, padded to exactly `size` bytes."""
    head = '{"model":"deepseek-ocr","task":"markdown","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,'
    tail = '"}}]}]}'
    payload = base64.b64encode(b"\x89PNG" + b"\x00" * size)[: size - len(head) - len(tail)].decode()
    body = head + payload + tail
    assert len(body) == size
    return body


def event_bytes(body_size: int) -> int:
    # Headers near API Gateway's 10 KB request-header limit; multiValueHeaders carries them twice.
    headers = {"Authorization": "Bearer sk-" + "k" * 120, "Content-Type": "application/json"}
    headers.update({f"X-Client-Header-{i}": "v" * 180 for i in range(50)})
    return len(json.dumps(rest_event("POST", "/v1/chat/completions", chat_body(body_size), headers)).encode())


def test_a_body_of_max_body_bytes_still_fits_lambdas_payload_limit():
    assert event_bytes(terraform_max_body_bytes()) <= LAMBDA_PAYLOAD_LIMIT


def test_the_old_setting_equal_to_the_limit_would_not_fit():
    # MAX_BODY_BYTES = 6 MB (the edge's local default) lets through bodies that Lambda then refuses.
    assert event_bytes(LAMBDA_PAYLOAD_LIMIT) > LAMBDA_PAYLOAD_LIMIT

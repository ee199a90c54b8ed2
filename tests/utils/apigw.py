"""API Gateway REST proxy (payload v1) and REQUEST-authorizer events, shaped as API Gateway sends them."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

API_ID = "a1b2c3d4e5"
ACCOUNT = "123456789012"
REGION = "us-west-2"
STAGE = "prod"  # clients call https://API_ID.execute-api.REGION.amazonaws.com/prod/v1/...; `path` keeps /v1


def rest_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    *,
    base64_body: bool = False,
    principal: str | None = "key-0123456789abcdef",
    api_key: str = "test-key-value",
) -> dict[str, Any]:
    """A proxy event for `ANY /{proxy+}` on stage `prod`, after our authorizer ran."""
    request_id = str(uuid.uuid4())
    headers = {"Host": f"{API_ID}.execute-api.{REGION}.amazonaws.com", "User-Agent": "OpenAI/Python 1.x",
               "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443", "X-Amzn-Trace-Id": "Root=1-abc-def",
               **(headers or {})}  # fmt: skip
    raw = body.encode() if isinstance(body, str) else body
    authorizer = (
        {"principalId": principal, "keyId": principal, "integrationLatency": 12} if principal else None
    )
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "extendedRequestId": "Xyz=",
            "requestTime": "28/Nov/2026:12:00:00 +0000",
            "path": f"/{STAGE}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": API_ID,
            "requestTimeEpoch": 1795867200000,
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": "203.0.113.7",
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": "OpenAI/Python 1.x",
                "user": None,
                "apiKey": api_key,
                "apiKeyId": "k1a2b3",
            },
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "apiId": API_ID,
            "authorizer": authorizer,
        },  # fmt: skip
        "body": None if raw is None else (base64.b64encode(raw).decode() if base64_body else raw.decode()),
        "isBase64Encoded": base64_body,
    }


def authorizer_event(
    headers: dict[str, str], method: str = "POST", path: str = "/v1/chat/completions"
) -> dict:
    """A REQUEST authorizer event."""
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}",
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {},
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": {},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
        },
    }


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "ocr-edge-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ocr-edge-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/ocr-edge-api"
    log_stream_name: str = "2026/11/28/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 115_000

"""API Gateway REQUEST authorizer: the key from either header becomes the usage-plan key.

API Gateway then checks that key against the usage plans (`api_key_source = AUTHORIZER`), which
meter, throttle and reject unknown keys. Identity sources: none (cache TTL 0), so a request with no
key reaches this function and is refused here with 401.
"""

from __future__ import annotations

from typing import Any

from edge_api.keys import key_from_headers, key_id


def all_resources(method_arn: str) -> str:
    """`arn:...:api/stage/METHOD/path` -> `arn:...:api/stage/*/*`: one policy for every route."""
    parts = method_arn.split("/")
    return "/".join(parts[:2]) + "/*/*" if len(parts) >= 2 else method_arn


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Allow any request that carries a key; API Gateway validates the key itself."""
    headers = {**(event.get("headers") or {})}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if values and name not in headers:
            headers[name] = values[0]
    key = key_from_headers(headers)
    if key is None:
        raise Exception("Unauthorized")  # API Gateway's contract: this exact message means 401
    principal = key_id(key)
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": all_resources(event["methodArn"]),
                }
            ],
        },
        "usageIdentifierKey": key,
        "context": {"keyId": principal},
    }

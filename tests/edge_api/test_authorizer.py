import pytest

from edge_api.authorizer import handler
from edge_api.keys import key_id
from tests.utils.apigw import LambdaContext, authorizer_event

KEY = "sk-live-abcdef123456"


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {KEY}"},
    {"authorization": f"bearer {KEY}"},
    {"x-api-key": KEY},
    {"X-API-Key": KEY},
    {"Authorization": "Basic Zm9vOmJhcg==", "x-api-key": KEY},
])  # fmt: skip
def test_either_header_becomes_the_usage_plan_key(headers):
    result = handler(authorizer_event(headers), LambdaContext())
    assert result["usageIdentifierKey"] == KEY
    assert result["principalId"] == key_id(KEY)
    assert KEY not in result["principalId"]
    statement = result["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"] == "arn:aws:execute-api:us-west-2:123456789012:a1b2c3d4e5/prod/*/*"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Token x"}, {"x-api-key": " "}]
)
def test_no_key_is_unauthorized(headers):
    with pytest.raises(Exception, match="^Unauthorized$"):
        handler(authorizer_event(headers), LambdaContext())


def test_a_key_no_encoding_can_write_still_gets_an_answer():
    """An event is JSON: a header can hold a lone surrogate, which UTF-8 cannot encode. The authorizer still
    answers (API Gateway then finds no usage-plan key for it and refuses), instead of failing."""
    key = "sk-\ud800-x"
    result = handler(authorizer_event({"x-api-key": key}), LambdaContext())
    assert result["usageIdentifierKey"] == key and result["principalId"].startswith("key-")


def test_multi_value_headers_are_read_too():
    event = authorizer_event({})
    event["multiValueHeaders"] = {"x-api-key": [KEY]}
    assert handler(event, LambdaContext())["usageIdentifierKey"] == KEY


def test_null_header_maps_are_unauthorized_not_a_crash():
    event = authorizer_event({})
    event["headers"] = None
    event["multiValueHeaders"] = None
    with pytest.raises(Exception, match="^Unauthorized$"):
        handler(event, LambdaContext())

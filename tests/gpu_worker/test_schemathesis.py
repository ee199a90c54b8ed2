"""Property-based requests generated from the served OpenAPI (schemathesis): none may give a 500."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 40


def test_no_generated_request_gives_a_500(rapid_worker):
    schema = schemathesis.openapi.from_url(rapid_worker.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/v1/chat/completions" for op in operations)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        def check(case):
            response = case.call(base_url=rapid_worker.url, timeout=60)
            assert response.status_code < 500, (case.body, response.text)
            if response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"message", "type", "param", "code"}

        check()

"""The edge's Powertools metrics for jobs, read back from the EMF the Lambda handler prints: JobsCreated and
JobsCancelled by API key id (pages are counted by the workers, in the usage table)."""

import base64
import importlib
import json

import pytest

from tests.utils.apigw import LambdaContext, rest_event

pytestmark = pytest.mark.integration
PRINCIPAL = "key-jobsmetrics0001"


@pytest.fixture(scope="module")
def handler(local_s3, jobs_aws):
    patch = pytest.MonkeyPatch()
    env = {"WORKER_URL": "http://127.0.0.1:9", "RESULTS_BUCKET": local_s3.bucket, "S3_ENDPOINT_URL": local_s3.endpoint,
           "POWERTOOLS_SERVICE_NAME": "edge-api", "POWERTOOLS_METRICS_NAMESPACE": "DeepSeekOCR",
           "AWS_LAMBDA_FUNCTION_NAME": "ocr-edge-api", **jobs_aws.edge_env()}  # fmt: skip
    for name, value in env.items():
        patch.setenv(name, value)
    patch.delenv("LOCAL_API_KEYS", raising=False)
    import edge_api.handler as module

    yield importlib.reload(module).handler
    patch.undo()


def invoke(handler, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    event = rest_event(method, path, json.dumps(body) if body else None,
                       {"Content-Type": "application/json"}, principal=PRINCIPAL)  # fmt: skip
    result = handler(event, LambdaContext())
    text = base64.b64decode(result["body"]).decode() if result.get("isBase64Encoded") else result["body"]
    return result["statusCode"], json.loads(text)


def emf(output: str) -> list[dict]:
    """The EMF documents among the printed lines."""
    found = []
    for line in output.splitlines():
        if '"_aws"' in line:
            found.append(json.loads(line[line.index("{") :]))
    return found


def metric(documents: list[dict], name: str) -> list[dict]:
    """The documents that carry metric `name`."""
    return [
        d for d in documents if any(m["Name"] == name for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"])
    ]


def test_creating_and_cancelling_a_job_emit_metrics_by_key_id(handler, local_s3, capfd):
    key = f"uploads/{PRINCIPAL}/doc.pdf"
    local_s3.client().put_object(
        Bucket=local_s3.bucket, Key=key, Body=b"%PDF-1.4\n", ContentType="application/pdf"
    )
    capfd.readouterr()
    status, job = invoke(handler, "POST", "/v1/jobs", {"file": f"s3://{local_s3.bucket}/{key}"})
    assert status == 202, job
    status, cancelled = invoke(handler, "DELETE", f"/v1/jobs/{job['id']}")
    assert status == 200 and cancelled["status"] == "cancelled"
    invoke(handler, "DELETE", f"/v1/jobs/{job['id']}")  # cancelling again changes nothing: no second count
    documents = emf(capfd.readouterr().out)
    for name in ("JobsCreated", "JobsCancelled"):
        found = metric(documents, name)
        assert len(found) == 1, (name, documents)
        assert found[0][name] in (1.0, [1.0]) and found[0]["api_key_id"] == PRINCIPAL
        assert "api_key_id" in found[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
        assert found[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DeepSeekOCR"

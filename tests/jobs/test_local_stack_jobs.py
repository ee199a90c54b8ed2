"""The local stack creates what its jobs settings name: table, queue (with its DLQ) and the completion topic."""

import boto3
import pytest

from scripts.local_stack import LocalStack, free_port

pytestmark = pytest.mark.integration


def test_the_local_stack_creates_the_jobs_resources_its_environment_names(tmp_path):
    stack = LocalStack(s3_port=free_port(), log_dir=tmp_path)
    try:
        stack._start_service("s3", 60)
        stack._create_bucket()
        env, endpoint = stack.jobs_env(), stack.urls["s3"]
        clients = {name: boto3.client(name, endpoint_url=endpoint, region_name="us-west-2", aws_access_key_id="local",
                                      aws_secret_access_key="local") for name in ("sns", "sqs", "dynamodb")}  # fmt: skip
        topics = [t["TopicArn"] for t in clients["sns"].list_topics()["Topics"]]
        assert env["JOBS_TOPIC_ARN"] in topics
        redrive = clients["sqs"].get_queue_attributes(
            QueueUrl=env["JOBS_QUEUE_URL"], AttributeNames=["RedrivePolicy"]
        )
        assert "ocr-jobs-dlq" in redrive["Attributes"]["RedrivePolicy"]  # the worker finds and drains its DLQ
        assert (
            clients["dynamodb"].describe_table(TableName=env["JOBS_TABLE"])["Table"]["TableStatus"]
            == "ACTIVE"
        )
    finally:
        stack.stop()

"""The jobs settings Terraform sets are the ones the code reads: names checked against the settings classes.

`terraform test` (infra/envs/prod/tests/jobs.tftest.hcl) proves the values reach the Lambda and the worker's
env file; this proves the names mean something to the code, and that no jobs setting the code needs is left
unset (a missing JOBS_QUEUE_URL is silent: the worker simply never consumes).
"""

from __future__ import annotations

from typing import Any

import pytest

from edge_api.settings import EdgeSettings
from gpu_worker.settings import WorkerSettings
from tests.infra.test_hcl import INFRA, parse

SETTINGS = {"edge_env": EdgeSettings, "worker_env": WorkerSettings}


def jobs_outputs() -> dict[str, dict[str, str]]:
    """The jobs module's env outputs: name -> {VARIABLE: expression}."""
    found: dict[str, Any] = {}
    for block in parse(INFRA / "modules" / "jobs").get("output", []):
        found.update({name: body["value"] for name, body in block.items() if name in SETTINGS})
    return found


def prod_module(name: str) -> dict[str, Any]:
    """One module block of the prod environment."""
    for block in parse(INFRA / "envs" / "prod").get("module", []):
        if name in block:
            return block[name]  # type: ignore[no-any-return]
    raise KeyError(name)


@pytest.mark.parametrize("output", sorted(SETTINGS))
def test_every_variable_terraform_sets_is_a_setting_of_the_code(output):
    fields = SETTINGS[output].model_fields
    assert all(name.lower() in fields for name in jobs_outputs()[output]), jobs_outputs()[output]


@pytest.mark.parametrize("output", sorted(SETTINGS))
def test_no_jobs_setting_without_a_default_is_left_unset(output):
    """Every `jobs_*` setting that defaults to None (table, queue, topic, DLQ) comes from Terraform."""
    unset = {name.upper() for name, field in SETTINGS[output].model_fields.items()
             if name.startswith("jobs_") and field.default is None}  # fmt: skip
    assert unset and unset <= set(jobs_outputs()[output])


def test_the_values_name_the_right_resources():
    worker, edge = jobs_outputs()["worker_env"], jobs_outputs()["edge_env"]
    for env in (worker, edge):
        assert env["JOBS_QUEUE_URL"] == "${aws_sqs_queue.this.id}"  # an SQS queue's id is its URL
        assert env["JOBS_TABLE"] == "${aws_dynamodb_table.this.name}"
    assert worker["JOBS_DLQ_URL"] == "${aws_sqs_queue.dlq.id}"
    assert worker["JOBS_TOPIC_ARN"] == "${aws_sns_topic.completions.arn}"
    assert worker["JOBS_MAX_RECEIVE"] == "${tostring(var.max_receive_count)}"  # the redrive's count


def test_the_environment_passes_them_to_the_lambda_and_the_workers():
    assert prod_module("edge")["edge_env"] == "${module.jobs.edge_env}"
    assert prod_module("worker_fleet")["worker_env"] == "${module.jobs.worker_env}"
    jobs = prod_module("jobs")
    assert jobs["edge_role_name"] == "${module.edge.lambda_role_name}"
    assert jobs["worker_role_name"] == "${module.worker_fleet.instance_role_name}"
    assert "depends_on" not in jobs  # with the env passed both ways, a module-wide depends_on is a cycle

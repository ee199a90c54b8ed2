# The jobs module inside the whole environment, offline (mock provider, real schema).

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  bucket_name     = "test-ocr-results"
  release         = "2026-11-29-r1"
  worker_ami_id   = "ami-0123456789abcdef0"
  lambda_zip_path = "tests/fixtures/edge_lambda.zip"
  api_key_names   = ["team-a"]
}

run "jobs_queue_table_topic_and_scaling_apply" {
  command = apply

  assert {
    condition     = jsondecode(module.jobs.redrive_policy).maxReceiveCount == 3 && module.jobs.worker_env.JOBS_MAX_RECEIVE == "3"
    error_message = "a page goes to the DLQ after 3 deliveries, and the workers count it failed on the 3rd"
  }
  assert {
    condition     = module.jobs.encryption.queue && module.jobs.encryption.dlq && module.jobs.encryption.table
    error_message = "queue, DLQ and table are encrypted at rest"
  }
  assert {
    condition     = module.jobs.table_features.pitr && module.jobs.table_features.ttl == "ttl" && module.jobs.table_features.billing == "PAY_PER_REQUEST" && module.jobs.table_features.index == "by_owner"
    error_message = "on-demand table with PITR, TTL on `ttl`, and the by_owner index GET /v1/jobs lists with"
  }
  assert {
    condition     = module.jobs.scaling.expression == "visible / MAX([in_service, 1])" && module.jobs.scaling.from_zero_capacity == 1
    error_message = "backlog per instance (never divided by zero) plus a step that starts the first worker"
  }
  assert {
    condition     = module.jobs.attached_roles.edge == "ocr-edge" && module.jobs.attached_roles.worker != ""
    error_message = "the policies are attached to the edge and worker roles"
  }
  assert {
    condition     = alltrue([for s in jsondecode(module.jobs.policies.edge).Statement : !contains(s.Action, "*") && !contains(s.Resource, "*")])
    error_message = "least privilege: no wildcard actions or resources for the edge"
  }
  assert {
    condition     = output.jobs.table_name == "ocr-jobs"
    error_message = "the environment outputs the jobs resources"
  }
}

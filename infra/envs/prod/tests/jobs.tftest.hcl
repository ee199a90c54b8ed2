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
    condition     = module.jobs.table_features.pitr && module.jobs.table_features.ttl == "ttl" && module.jobs.table_features.billing == "PAY_PER_REQUEST" && module.jobs.table_features.indexes == tolist(["by_notify", "by_owner"])
    error_message = "on-demand table with PITR, TTL on `ttl`, the by_owner index GET /v1/jobs lists with, and the by_notify index workers sweep for unsent events"
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

# The jobs settings reach the code: the Lambda's environment and the env file the worker's boot writes.
run "the_jobs_settings_reach_the_lambda_and_the_worker_env_file" {
  command = apply

  assert {
    condition     = module.edge.api_environment.JOBS_TABLE == "ocr-jobs" && module.edge.api_environment.JOBS_QUEUE_URL == module.jobs.queue_url
    error_message = "the edge Lambda gets JOBS_TABLE and JOBS_QUEUE_URL (unset, /v1/jobs and /v1/usage answer 503)"
  }
  assert {
    condition     = alltrue([for k, v in module.jobs.edge_env : lookup(module.edge.api_environment, k, null) == v])
    error_message = "every setting of the jobs module's edge_env is on the Lambda, unchanged"
  }
  assert {
    condition     = alltrue([for k in ["JOBS_QUEUE_URL", "JOBS_TABLE", "JOBS_TOPIC_ARN", "JOBS_DLQ_URL", "JOBS_MAX_RECEIVE", "JOBS_VISIBILITY_S"] : contains(keys(module.jobs.worker_env), k)])
    error_message = "the workers get the queue, table, topic and DLQ, and the receive count and visibility the queue has"
  }
  assert {
    # The env file is written line by line from a quoted heredoc: each setting is a line of its own.
    condition     = alltrue([for k, v in module.jobs.worker_env : strcontains(module.worker_fleet.user_data, "\n${k}=${v}\n")])
    error_message = "every jobs setting is a line of the env file in the workers' rendered user data (without JOBS_QUEUE_URL no worker consumes)"
  }
  assert {
    condition     = module.jobs.attached_roles.edge == module.edge.lambda_role_name && module.jobs.attached_roles.worker == module.worker_fleet.instance_role_name
    error_message = "the jobs policies go onto the roles the edge Lambda and the worker instances run as"
  }
}

# Each AWS call the code makes, with a resource it makes it on, is allowed by the role that makes it.
# Edge: edge_api/jobs.py and store.py, gpu_worker/protocol/job_table.py. Workers: gpu_worker/consumer.py,
# job_output.py, storage.py (the /health probe is HeadBucket, authorised as s3:ListBucket).
run "every_call_the_code_makes_is_allowed" {
  command = apply

  assert {
    condition = length([
      for call in [
        ["dynamodb:PutItem", module.jobs.table_arn],                                           # create_job, claim_idempotency_key
        ["dynamodb:GetItem", module.jobs.table_arn],                                           # get_job, get_owned
        ["dynamodb:UpdateItem", module.jobs.table_arn],                                        # add_usage, complete, cancel
        ["dynamodb:Query", module.jobs.table_arn],                                             # pages, usage
        ["dynamodb:Query", "${module.jobs.table_arn}/index/by_owner"],                         # list_jobs
        ["dynamodb:DeleteItem", module.jobs.table_arn],                                        # release_idempotency_key
        ["sqs:SendMessage", module.jobs.queue_arn],                                            # the split message
        ["s3:GetObject", "${module.results_bucket.arn}/uploads/key-0123/doc.pdf"],             # HeadObject in check_file
        ["s3:GetObject", "${module.results_bucket.arn}/jobs/job-1/result.md"],                 # signed links to a job's files
        ["s3:GetObject", "${module.results_bucket.arn}/jobs/job-1/pages/0001/result.json"],    # signed links to a page's result
        ["s3:PutObject", "${module.results_bucket.arn}/uploads/key-0123/doc.pdf"],             # presigned POST /v1/uploads
        ["s3:GetObject", "${module.results_bucket.arn}/results/2026/11/29/req-1/result.json"], # GET /v1/results
        ] : call if !anytrue([
          for st in concat(jsondecode(module.edge.lambda_policy).Statement, jsondecode(module.jobs.policies.edge).Statement) :
          st.Effect == "Allow" && contains(flatten([st.Action]), call[0]) && anytrue([for r in flatten([st.Resource]) : r == call[1] || (endswith(r, "*") && startswith(call[1], trimsuffix(r, "*")))])
      ])
    ]) == 0
    error_message = "the edge Lambda's role misses an action the edge code calls (DynamoDB, SQS, or S3 on uploads/jobs/results)"
  }
  assert {
    condition = length([
      for call in [
        ["sqs:ReceiveMessage", module.jobs.queue_arn],                                         # _run
        ["sqs:DeleteMessage", module.jobs.queue_arn],                                          # a finished message
        ["sqs:ChangeMessageVisibility", module.jobs.queue_arn],                                # heartbeat, quick retry
        ["sqs:SendMessage", module.jobs.queue_arn],                                            # send_message_batch of the pages
        ["sqs:GetQueueAttributes", module.jobs.queue_arn],                                     # _find_dlq without JOBS_DLQ_URL
        ["sqs:ReceiveMessage", module.jobs.dlq_arn],                                           # _drain_dlq
        ["sqs:DeleteMessage", module.jobs.dlq_arn],                                            # a settled dead letter
        ["sqs:GetQueueUrl", module.jobs.dlq_arn],                                              # _find_dlq
        ["dynamodb:GetItem", module.jobs.table_arn],                                           # get_job, page
        ["dynamodb:Query", module.jobs.table_arn],                                             # pages
        ["dynamodb:UpdateItem", module.jobs.table_arn],                                        # set_pages_total, start_page, complete, finish_page's transaction
        ["dynamodb:BatchWriteItem", module.jobs.table_arn],                                    # set_pages_total's page records
        ["dynamodb:Query", "${module.jobs.table_arn}/index/by_notify"],                        # notify_due: the event sweep
        ["sns:Publish", module.jobs.topic_arn],                                                # notify
        ["s3:PutObject", "${module.results_bucket.arn}/jobs/job-1/pages/0001.png"],            # split's page images
        ["s3:GetObject", "${module.results_bucket.arn}/jobs/job-1/pages/0001.png"],            # a page reads its image
        ["s3:PutObject", "${module.results_bucket.arn}/jobs/job-1/pages/0001/result.json"],    # a page's result
        ["s3:GetObject", "${module.results_bucket.arn}/jobs/job-1/pages/0001/result.json"],    # assemble
        ["s3:PutObject", "${module.results_bucket.arn}/jobs/job-1/result.md"],                 # assemble
        ["s3:GetObject", "${module.results_bucket.arn}/uploads/key-0123/doc.pdf"],             # fetch_upload (HeadObject, GetObject)
        ["s3:PutObject", "${module.results_bucket.arn}/results/2026/11/29/req-1/result.json"], # inline results
        ["s3:ListBucket", module.results_bucket.arn],                                          # HeadBucket: /health's S3 probe
        ] : call if !anytrue([
          for st in concat(jsondecode(module.worker_fleet.instance_policy).Statement, jsondecode(module.jobs.policies.worker).Statement) :
          st.Effect == "Allow" && contains(flatten([st.Action]), call[0]) && anytrue([for r in flatten([st.Resource]) : r == call[1] || (endswith(r, "*") && startswith(call[1], trimsuffix(r, "*")))])
      ])
    ]) == 0
    error_message = "the worker role misses an action the worker code calls (SQS queue/DLQ, DynamoDB, SNS, S3 jobs/uploads/results or the bucket probe)"
  }
  assert {
    condition     = !anytrue([for st in jsondecode(module.jobs.policies.worker).Statement : contains(st.Action, "dynamodb:PutItem") || contains(st.Action, "dynamodb:DeleteItem")])
    error_message = "least privilege: workers never put or delete whole records (they update and batch-write pages)"
  }
}

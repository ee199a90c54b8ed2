# Least privilege, action by action from the code that calls AWS (the comments name it):
# the edge (edge_api/jobs.py + gpu_worker/protocol/job_table.py) writes job records, sends the split message,
# checks the upload and signs links to a job's files; workers (gpu_worker/consumer.py, job_output.py) consume
# the queue, drain the DLQ, count pages, publish completions and keep the jobs/* prefix of the results bucket.
# DynamoDB has no IAM action for TransactWriteItems: each item in it is authorised as its own UpdateItem.
# No KMS: SQS and DynamoDB use service-owned keys, the topic AWS's own (its key policy admits SNS callers of
# this account), the bucket SSE-S3.

locals {
  table_arns = [aws_dynamodb_table.this.arn, "${aws_dynamodb_table.this.arn}/index/${local.owner_index}"]
  edge_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        # put: create_job, claim_idempotency_key; update: add_usage, complete/cancel; get: get_job;
        # query: pages and usage on the table, list_jobs on the by_owner index;
        # delete: release_idempotency_key (a job that could not be queued frees its key for a retry).
        Sid      = "JobRecords"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DeleteItem"]
        Resource = local.table_arns
      },
      { Sid = "SplitMessages", Effect = "Allow", Action = ["sqs:SendMessage"], Resource = [aws_sqs_queue.this.arn] },
      {
        # HeadObject of the job's upload (check_file) is authorised as s3:GetObject.
        Sid      = "CheckUploads"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${var.bucket_arn}/${var.upload_prefix}*"]
      },
      {
        # Presigned GETs of result.md, result.json and each page's files: a link works only if its signer may read.
        Sid      = "SignJobLinks"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${var.bucket_arn}/${local.jobs_prefix}*"]
      },
    ]
  }
  worker_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        # receive, delete, heartbeat (change visibility); send: the split's page fan-out (SendMessageBatch is
        # authorised as SendMessage); get attributes: the DLQ's ARN from the redrive policy when JOBS_DLQ_URL is unset.
        Sid      = "ConsumeJobs"
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage", "sqs:GetQueueAttributes"]
        Resource = [aws_sqs_queue.this.arn]
      },
      {
        # Pages whose messages gave up uncounted are counted failed from here (consumer._drain_dlq).
        Sid      = "DrainDeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl"]
        Resource = [aws_sqs_queue.dlq.arn]
      },
      {
        # get: get_job, page; query: pages; update: set_pages_total, start_page, complete, finish_page (a
        # TransactWriteItems of three updates); batch write: the page records set_pages_total creates. No PutItem.
        # notified, claim_notify: updates; notify_due: a query of the by_notify index.
        Sid      = "CountPages"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]
        Resource = [aws_dynamodb_table.this.arn, "${aws_dynamodb_table.this.arn}/index/${local.notify_index}"]
      },
      { Sid = "Completions", Effect = "Allow", Action = ["sns:Publish"], Resource = [aws_sns_topic.completions.arn] },
      {
        # Page images, per-page results, result.md/json: written, then read back by whoever assembles the job.
        Sid      = "JobFiles"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject"]
        Resource = ["${var.bucket_arn}/${local.jobs_prefix}*"]
      },
    ]
  }
}

# Inline policies on the roles passed in by name: they live and go with this module.
resource "aws_iam_role_policy" "edge" {
  name   = "${var.name}-jobs-edge"
  role   = var.edge_role_name
  policy = jsonencode(local.edge_policy)
}

resource "aws_iam_role_policy" "worker" {
  name   = "${var.name}-jobs-worker"
  role   = var.worker_role_name
  policy = jsonencode(local.worker_policy)
}

locals {
  tags = merge(var.tags, { component = "jobs" })
  # Fixed by the code: gpu_worker/protocol/jobs.py (job_prefix) and job_table.py (OWNER_INDEX, NOTIFY_INDEX).
  jobs_prefix  = "jobs/"
  owner_index  = "by_owner"
  notify_index = "by_notify"
}

# ---- queue + DLQ --------------------------------------------------------------------------------

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-jobs-dlq"
  message_retention_seconds = 1209600 # 14 days to look at poison pages
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}

resource "aws_sqs_queue" "this" {
  name                       = "${var.name}-jobs"
  visibility_timeout_seconds = var.visibility_timeout_s
  message_retention_seconds  = 345600
  receive_wait_time_seconds  = 10
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = local.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

# ---- job records --------------------------------------------------------------------------------

resource "aws_dynamodb_table" "this" {
  #checkov:skip=CKV_AWS_119:AWS-owned encryption at rest; a customer key adds cost and a key policy to run
  name         = "${var.name}-jobs"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "owner"
    type = "S"
  }
  attribute {
    name = "created_id"
    type = "S"
  }
  attribute {
    name = "notify_state"
    type = "S"
  }
  attribute {
    name = "notify_after"
    type = "N"
  }

  # GET /v1/jobs lists one key's jobs, newest first.
  global_secondary_index {
    name            = local.owner_index
    hash_key        = "owner"
    range_key       = "created_id"
    projection_type = "ALL"
  }

  # Sparse: only finished jobs whose completion event is not known to be sent. Workers sweep it, so an
  # event whose sender died is sent by another (job_table.py NOTIFY_INDEX, consumer._sweep_events).
  global_secondary_index {
    name            = local.notify_index
    hash_key        = "notify_state"
    range_key       = "notify_after"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = local.tags
}

# ---- completion events --------------------------------------------------------------------------

resource "aws_sns_topic" "completions" {
  name              = "${var.name}-job-completions"
  kms_master_key_id = "alias/aws/sns"
  tags              = local.tags
}

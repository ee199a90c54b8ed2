output "queue_url" {
  description = "URL of the jobs queue (JOBS_QUEUE_URL for the edge and the workers)."
  value       = aws_sqs_queue.this.id
}

output "queue_arn" {
  description = "ARN of the jobs queue."
  value       = aws_sqs_queue.this.arn
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "table_arn" {
  description = "ARN of the job records table."
  value       = aws_dynamodb_table.this.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue (pages that failed every attempt)."
  value       = aws_sqs_queue.dlq.id
}

output "table_name" {
  description = "Name of the job records table (JOBS_TABLE)."
  value       = aws_dynamodb_table.this.name
}

output "topic_arn" {
  description = "ARN of the completion events topic (JOBS_TOPIC_ARN for the workers)."
  value       = aws_sns_topic.completions.arn
}

output "edge_env" {
  description = "Environment the edge Lambda needs for /v1/jobs."
  value       = { JOBS_TABLE = aws_dynamodb_table.this.name, JOBS_QUEUE_URL = aws_sqs_queue.this.id }
}

output "worker_env" {
  description = "Environment the workers need to consume jobs and drain the DLQ (JOBS_MAX_RECEIVE matches the redrive policy)."
  value = {
    JOBS_TABLE        = aws_dynamodb_table.this.name
    JOBS_QUEUE_URL    = aws_sqs_queue.this.id
    JOBS_TOPIC_ARN    = aws_sns_topic.completions.arn
    JOBS_DLQ_URL      = aws_sqs_queue.dlq.id
    JOBS_MAX_RECEIVE  = tostring(var.max_receive_count)
    JOBS_VISIBILITY_S = tostring(var.visibility_timeout_s)
  }
}

output "redrive_policy" {
  description = "The queue's redrive policy (JSON): where and after how many deliveries pages go."
  value       = aws_sqs_queue.this.redrive_policy
}

output "encryption" {
  description = "Encryption at rest of the queue, the DLQ and the table."
  value = {
    queue = aws_sqs_queue.this.sqs_managed_sse_enabled
    dlq   = aws_sqs_queue.dlq.sqs_managed_sse_enabled
    table = aws_dynamodb_table.this.server_side_encryption[0].enabled
  }
}

output "table_features" {
  description = "Billing mode, point-in-time recovery, TTL attribute and indexes of the table."
  value = {
    billing = aws_dynamodb_table.this.billing_mode
    pitr    = aws_dynamodb_table.this.point_in_time_recovery[0].enabled
    ttl     = aws_dynamodb_table.this.ttl[0].attribute_name
    indexes = sort(aws_dynamodb_table.this.global_secondary_index[*].name)
  }
}

output "scaling" {
  description = "The backlog-per-instance expression and the capacity the from-zero step sets."
  value = {
    expression         = one([for m in aws_autoscaling_policy.backlog.target_tracking_configuration[0].customized_metric_specification[0].metrics : m.expression if m.return_data])
    from_zero_capacity = one([for s in aws_autoscaling_policy.from_zero.step_adjustment : s.scaling_adjustment])
  }
}

output "attached_roles" {
  description = "The roles the jobs policies are attached to."
  value       = { edge = aws_iam_role_policy.edge.role, worker = aws_iam_role_policy.worker.role }
}

output "policies" {
  description = "The edge and worker policy documents (JSON)."
  value       = { edge = aws_iam_role_policy.edge.policy, worker = aws_iam_role_policy.worker.policy }
}

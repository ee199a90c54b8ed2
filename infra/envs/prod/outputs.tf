output "api_url" {
  description = "Base URL for clients: the openai client's base_url (https://.../v1)."
  value       = module.edge.api_url
}

output "api_key_ids" {
  description = "API key ids by name; the values: aws apigateway get-api-key --api-key ID --include-value."
  value       = module.edge.api_key_ids
}

output "web_url" {
  description = "The web app (behind its Cognito login); null without enable_web."
  value       = one(module.web[*].url)
}

output "web_alb_dns_name" {
  description = "Point the web app's domain at this name (null without enable_web)."
  value       = one(module.web[*].alb_dns_name)
}

output "web_user_pool_id" {
  description = "Cognito user pool of the web app's users (null without enable_web)."
  value       = one(module.web[*].user_pool_id)
}

output "worker_alb_dns_name" {
  description = "Internal ALB of the workers."
  value       = module.worker_fleet.alb_dns_name
}

output "worker_alb_security_group_id" {
  description = "Security group of the internal ALB."
  value       = module.worker_fleet.alb_security_group_id
}

output "results_bucket" {
  description = "Results bucket."
  value       = module.results_bucket.bucket
}

output "worker_asg_name" {
  description = "Auto Scaling group of the GPU workers."
  value       = module.worker_fleet.asg_name
}

output "log_groups" {
  description = "Log groups: worker, edge Lambdas, API access."
  value       = concat([module.worker_fleet.log_group_name], module.edge.log_group_names)
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.alarms.topic_arn
}

output "release" {
  description = "The release the instances boot (s3://BUCKET/artifacts/<release>/)."
  value       = var.release
}

output "timeouts" {
  description = "The nested timeouts as set on the resources: worker < edge read < Lambda < integration."
  value = {
    worker_request_s = module.worker_fleet.request_timeout_s
    edge_worker_s    = module.edge.timeouts.edge_worker_s
    lambda_s         = module.edge.timeouts.lambda_s
    integration_s    = module.edge.timeouts.integration_ms / 1000
  }
}

output "worker_shared_secret_parameter" {
  description = "SSM parameter of the edge -> worker shared secret (rotate: README)."
  value       = module.worker_fleet.shared_secret_parameter_name
}

output "jobs" {
  description = "The jobs queue, DLQ, table and completion topic."
  value = {
    queue_url  = module.jobs.queue_url
    dlq_url    = module.jobs.dlq_url
    table_name = module.jobs.table_name
    topic_arn  = module.jobs.topic_arn
  }
}

output "integration_timeout_ms" {
  description = "API Gateway integration timeout (ms)."
  value       = local.integration_timeout_ms
}

output "lambda_timeout_s" {
  description = "Timeout of the edge Lambda (s), below the integration timeout."
  value       = local.lambda_timeout_s
}

output "edge_worker_timeout_s" {
  description = "The edge's WORKER_TIMEOUT_S (s), below the Lambda timeout."
  value       = local.edge_worker_timeout_s
}

output "worker_request_timeout_s" {
  description = "The worker's REQUEST_TIMEOUT_S (s), below the edge's read timeout."
  value       = local.worker_request_s
}

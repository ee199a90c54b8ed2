variable "name" {
  type        = string
  description = "Name prefix for every resource."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the Lambda."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets the Lambda runs in (it reaches the internal ALB from there)."
}

variable "s3_prefix_list_id" {
  type        = string
  description = "Prefix list of the S3 gateway endpoint (Lambda egress to S3)."
}

variable "endpoint_security_group_id" {
  type        = string
  description = "Security group of the VPC's interface endpoints (SQS, SNS): the Lambda has no internet."
}

variable "dynamodb_prefix_list_id" {
  type        = string
  description = "Prefix list of the DynamoDB gateway endpoint (Lambda egress to the jobs table)."
}

variable "worker_alb_security_group_id" {
  type        = string
  description = "Security group of the internal worker ALB (Lambda egress goes there)."
}

variable "worker_url" {
  type        = string
  description = "Base URL of the internal ALB, e.g. http://internal-x.elb.amazonaws.com."
}

variable "lambda_zip_path" {
  type        = string
  description = "Path of the edge zip built by scripts/build_lambda.py."
}

variable "api_handler" {
  type        = string
  description = "Handler of the API function."
  default     = "edge_api.handler.handler"
}

variable "authorizer_handler" {
  type        = string
  description = "Handler of the REQUEST authorizer function (same zip)."
  default     = "edge_api.authorizer.handler"
}

variable "bucket_name" {
  type        = string
  description = "Results bucket."
}

variable "bucket_arn" {
  type        = string
  description = "Results bucket ARN."
}

variable "results_prefix" {
  type        = string
  description = "Key prefix of results."
  default     = "results/"
}

variable "upload_prefix" {
  type        = string
  description = "Key prefix of uploads."
  default     = "uploads/"
}

variable "lambda_timeout_s" {
  type        = number
  description = "Lambda timeout (s): above worker_timeout_s, below the integration timeout (the root derives both from one budget)."
}

variable "worker_timeout_s" {
  type        = number
  description = "The edge's read timeout towards the worker (WORKER_TIMEOUT_S), below lambda_timeout_s."
}

variable "worker_shared_secret" {
  type        = string
  description = "Shared secret the edge sends to the workers (WORKER_SHARED_SECRET, header x-worker-secret)."
  sensitive   = true
}

variable "lambda_memory_mb" {
  type        = number
  description = "Lambda memory (CPU scales with it)."
  default     = 512
}

variable "reserved_concurrency" {
  type        = number
  description = "Reserved concurrency of the API function (-1: none). Reserving needs the account's unreserved pool to stay >= 100; new accounts have a limit of 10."
  default     = -1
}

variable "event_envelope_bytes" {
  type        = number
  description = "Room kept in Lambda's 6 MB request payload for the API Gateway event around the body (headers twice, request context, JSON escaping); MAX_BODY_BYTES is the rest."
  default     = 262144
}

variable "integration_timeout_ms" {
  type        = number
  description = "API Gateway integration timeout (the root derives it from its timeout budget). Above 29000 needs the regional REST API integration-timeout quota raised first (Service Quotas)."

  validation {
    condition     = var.integration_timeout_ms >= 50 && var.integration_timeout_ms <= 300000
    error_message = "Between 50 ms and 300000 ms."
  }
}

variable "stage_name" {
  type        = string
  description = "API stage; clients use https://ID.execute-api.REGION.amazonaws.com/STAGE/v1 (the app's routes keep /v1)."
  default     = "prod"
}

variable "api_key_names" {
  type        = list(string)
  description = "One API key is created per name, in the clients' usage plan."
  default     = ["default"]
}

variable "client_throttle" {
  type = object({
    rate_limit   = number
    burst_limit  = number
    quota_limit  = number
    quota_period = string
  })
  description = "Throttle and quota of the clients' usage plan."
  default     = { rate_limit = 5, burst_limit = 10, quota_limit = 50000, quota_period = "MONTH" }
}

variable "web_throttle" {
  type = object({
    rate_limit   = number
    burst_limit  = number
    quota_limit  = number
    quota_period = string
  })
  description = "Throttle and quota of the web app's own usage plan (low)."
  default     = { rate_limit = 1, burst_limit = 2, quota_limit = 2000, quota_period = "DAY" }
}

variable "docs_throttle" {
  type = object({
    rate_limit  = number
    burst_limit = number
  })
  description = "Throttle of each public docs method (GET /docs, /redoc, /openapi.json, /static-offline-docs/*): they need no key, so no usage plan bounds them. One page load is about five requests."
  default     = { rate_limit = 5, burst_limit = 20 }
}

variable "edge_env" {
  type        = map(string)
  description = "Extra edge settings (JOBS_TABLE and JOBS_QUEUE_URL from the jobs module, UPLOAD_MAX_BYTES, ...)."
  default     = {}
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the Lambda and access log groups."
  default     = 30
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
}

variable "name" {
  type        = string
  description = "Name prefix for every resource."
}

variable "alarm_email" {
  type        = string
  description = "Email subscribed to the alarm topic (confirm the subscription mail). Empty: no subscription."
  default     = ""
}

variable "api_name" {
  type        = string
  description = "REST API name (ApiName dimension)."
}

variable "stage_name" {
  type        = string
  description = "API stage (Stage dimension)."
}

variable "api_function_name" {
  type        = string
  description = "The edge Lambda's function name."
}

variable "worker_alb_arn_suffix" {
  type        = string
  description = "ARN suffix of the internal worker ALB."
}

variable "worker_target_group_arn_suffix" {
  type        = string
  description = "ARN suffix of the worker target group."
}

variable "worker_asg_name" {
  type        = string
  description = "Auto Scaling group of the workers (GPU metrics are aggregated by it)."
}

variable "error_rate_threshold" {
  type        = number
  description = "API 5xx responses as a fraction of requests that raises the alarm."
  default     = 0.05
}

variable "p95_latency_ms_threshold" {
  type        = number
  description = "API p95 latency (ms) that raises the alarm."
  default     = 60000
}

variable "gpu_memory_percent_threshold" {
  type        = number
  description = "GPU memory in use (%) that raises the alarm."
  default     = 95
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
}

variable "region" {
  type        = string
  description = "AWS region (with g6 capacity)."
  default     = "us-west-2"
}

variable "name" {
  type        = string
  description = "Name prefix of every resource."
  default     = "ocr"
}

variable "bucket_name" {
  type        = string
  description = "Bucket of results, uploads and the staged releases (globally unique; scripts/stage_artifacts.py writes artifacts/<release>/ into it)."
}

variable "release" {
  type        = string
  description = "Release staged by scripts/stage_artifacts.py under s3://BUCKET/artifacts/<release>/. Changing it rolls the fleet (instance refresh)."
}

variable "worker_ami_id" {
  type        = string
  description = "Pinned GPU Deep Learning AMI of the workers (Ubuntu 24.04, Python 3.12): README shows how to look up the id."
}

variable "timeout_budget_s" {
  type        = number
  description = "The one timeout budget (s): API Gateway's integration timeout; the Lambda, the edge's read and the worker's timeouts nest below it. Above 29 needs the integration-timeout quota raised first."
  default     = 29
}

variable "lambda_zip_path" {
  type        = string
  description = "The edge zip built by scripts/build_lambda.py."
  default     = "../../../dist/edge_lambda.zip"
}

variable "api_handler" {
  type        = string
  description = "Handler of the API function inside the zip."
  default     = "edge_api.handler.handler"
}

variable "authorizer_handler" {
  type        = string
  description = "Handler of the authorizer function inside the zip."
  default     = "edge_api.authorizer.handler"
}

variable "enable_nat" {
  type        = bool
  description = "A NAT gateway for the private subnets. Off by default: workers boot from the staged release through the S3 gateway endpoint and reach AWS through interface endpoints. The web app needs it."
  default     = false
}

variable "interface_endpoints" {
  type        = list(string)
  description = "AWS services the private subnets reach through interface endpoints (about $7.30 a month each per AZ)."
  default     = ["ssm", "ssmmessages", "ec2messages", "ec2", "logs", "monitoring", "sqs", "sns"]

  # Without a NAT these are the only way out: the boot reads its secret from SSM, the edge and the
  # workers use SQS, the workers publish to SNS. Dropping one would leave a fleet that never works.
  validation {
    condition     = var.enable_nat || alltrue([for service in ["ssm", "sqs", "sns"] : contains(var.interface_endpoints, service)])
    error_message = "With enable_nat = false, interface_endpoints must include ssm (the boot's secret), sqs and sns (jobs)."
  }
}

variable "worker_instance_type" {
  type        = string
  description = "GPU instance type of the workers."
  default     = "g6.xlarge"
}

variable "worker_min" {
  type        = number
  description = "Fewest workers (at least 1: request-count scaling cannot start a worker from zero)."
  default     = 1
}

variable "worker_max" {
  type        = number
  description = "Most workers."
  default     = 3
}

variable "api_key_names" {
  type        = list(string)
  description = "One API key per name in the clients' usage plan."
  default     = ["default"]
}

variable "enable_web" {
  type        = bool
  description = "The web app (Cognito login, public ALB, one instance). Needs enable_nat = true and the web_* settings."
  default     = false
}

variable "web_ami_id" {
  type        = string
  description = "Pinned Ubuntu 24.04 AMI (Python 3.12) of the web instance (with enable_web)."
  default     = null

  validation {
    condition     = !var.enable_web || can(regex("^ami-[0-9a-f]{8,17}$", var.web_ami_id))
    error_message = "enable_web needs web_ami_id (an Ubuntu 24.04 AMI id)."
  }
}

variable "web_domain_name" {
  type        = string
  description = "Host name of the web app (covered by web_certificate_arn)."
  default     = null

  validation {
    condition     = !var.enable_web || var.web_domain_name != null
    error_message = "enable_web needs web_domain_name."
  }
}

variable "web_certificate_arn" {
  type        = string
  description = "ACM certificate of the web app's host name, in var.region."
  default     = null

  validation {
    condition     = !var.enable_web || var.web_certificate_arn != null
    error_message = "enable_web needs web_certificate_arn."
  }
}

variable "web_allowed_cidrs" {
  type        = list(string)
  description = "Networks allowed to reach the web app's login."
  default     = ["0.0.0.0/0"]
}

variable "cognito_domain_prefix" {
  type        = string
  description = "Prefix of the Cognito hosted login domain (globally unique; with enable_web)."
  default     = null

  validation {
    condition     = !var.enable_web || var.cognito_domain_prefix != null
    error_message = "enable_web needs cognito_domain_prefix."
  }
}

variable "alarm_email" {
  type        = string
  description = "Email for alarm notifications (empty: none)."
  default     = ""
}

variable "results_expire_days" {
  type        = number
  description = "Days results are kept."
  default     = 30
}

variable "uploads_expire_days" {
  type        = number
  description = "Days uploads are kept."
  default     = 1
}

variable "deletion_protection" {
  type        = bool
  description = "Deletion protection of the load balancers (set false, apply, then destroy)."
  default     = true
}

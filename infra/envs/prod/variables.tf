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
  description = "Results bucket name (globally unique)."
}

variable "source_archive_url" {
  type        = string
  description = "A .tar.gz of this repository at a release; the worker and web instances install from it."
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
  description = "NAT for the private subnets (boot installs packages and fetches weights)."
  default     = true
}

variable "worker_instance_type" {
  type        = string
  description = "GPU instance type of the workers."
  default     = "g6.xlarge"
}

variable "worker_ami_id" {
  type        = string
  description = "AMI overriding the GPU Deep Learning AMI's SSM parameter."
  default     = null
}

variable "worker_min" {
  type        = number
  description = "Fewest workers (1 = always on)."
  default     = 1
}

variable "worker_max" {
  type        = number
  description = "Most workers."
  default     = 3
}

variable "install_flash_attn" {
  type        = bool
  description = "Install flash-attn on the workers (may build from source for a long time)."
  default     = false
}

variable "integration_timeout_ms" {
  type        = number
  description = "API Gateway integration timeout; above 29000 needs the regional integration-timeout quota raised first."
  default     = 120000
}

variable "api_key_names" {
  type        = list(string)
  description = "One API key per name in the clients' usage plan."
  default     = ["default"]
}

variable "web_domain_name" {
  type        = string
  description = "Host name of the web app (covered by web_certificate_arn)."
}

variable "web_certificate_arn" {
  type        = string
  description = "ACM certificate of the web app's host name, in var.region."
}

variable "web_allowed_cidrs" {
  type        = list(string)
  description = "Networks allowed to reach the web app's login."
  default     = ["0.0.0.0/0"]
}

variable "cognito_domain_prefix" {
  type        = string
  description = "Prefix of the Cognito hosted login domain (globally unique)."
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

variable "name" {
  type        = string
  description = "Name prefix for every resource."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the web app."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Public subnets for the internet-facing ALB."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets for the web app instance."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate for the web app's HTTPS listener (in the deployment region)."
}

variable "domain_name" {
  type        = string
  description = "Host name the certificate covers (the web app's URL); point it at the ALB's DNS name."
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "Who may reach the web app at all (before login)."
  default     = ["0.0.0.0/0"]
}

variable "cognito_domain_prefix" {
  type        = string
  description = "Prefix of the Cognito hosted login domain (globally unique)."
}

variable "edge_url" {
  type        = string
  description = "The API's stage URL, without /v1 (the web app adds the /v1 routes)."
}

variable "web_api_key_value" {
  type        = string
  description = "The web app's own API key (kept in SSM SecureString, read at boot)."
  sensitive   = true
}

variable "release" {
  type        = string
  description = "Release staged by scripts/stage_artifacts.py (the web wheelhouse and frontend under web/); changing it replaces the instance."
}

variable "bucket_name" {
  type        = string
  description = "Bucket holding the staged releases."
}

variable "bucket_arn" {
  type        = string
  description = "ARN of the bucket holding the staged releases."
}

variable "artifacts_prefix" {
  type        = string
  description = "Key prefix of the staged releases."
  default     = "artifacts/"
}

variable "internet_egress" {
  type        = bool
  description = "Whether the private subnets reach the internet (NAT): the web app needs it."
}

variable "instance_type" {
  type        = string
  description = "Instance type of the web app (Reflex backend + static frontend)."
  default     = "t3.small"
}

variable "ami_id" {
  type        = string
  description = "Pinned AMI of the web instance: Ubuntu 24.04 (Python 3.12) by id; README shows how to look it up."

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "An AMI id (ami-...)."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the load balancer from deletion (set false before `terraform destroy`)."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
}

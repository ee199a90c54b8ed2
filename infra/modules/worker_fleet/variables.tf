variable "name" {
  type        = string
  description = "Name prefix for every resource."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the fleet."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets for the internal ALB and the instances (two AZs or more)."
}

variable "s3_prefix_list_id" {
  type        = string
  description = "Prefix list of the S3 gateway endpoint (instance egress to S3)."
}

variable "dynamodb_prefix_list_id" {
  type        = string
  description = "Prefix list of the DynamoDB gateway endpoint (instance egress to the jobs table)."
}

variable "internet_egress" {
  type        = bool
  description = "Whether the private subnets have a NAT: then the workers may send HTTPS to the internet (job webhooks)."
  default     = false
}

variable "alb_ingress_security_group_ids" {
  type        = map(string)
  description = "Security groups allowed to call the internal ALB, by a static name (e.g. { edge_lambda = sg-... })."
  default     = {}
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
  description = "Key prefix of results (the instances may get and put here)."
  default     = "results/"
}

variable "upload_prefix" {
  type        = string
  description = "Key prefix of uploads (the instances may only get here)."
  default     = "uploads/"
}

variable "instance_type" {
  type        = string
  description = "GPU instance type (g6.xlarge: 1x L4 24 GB)."
  default     = "g6.xlarge"
}

variable "ami_id" {
  type        = string
  description = "Pinned AMI of the workers: the GPU Deep Learning AMI (Ubuntu 24.04, Python 3.12) by id; README shows how to look it up."

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "An AMI id (ami-...)."
  }
}

variable "root_volume_gb" {
  type        = number
  description = "Encrypted gp3 root volume size (weights, venv, CUDA libraries)."
  default     = 100
}

variable "min_size" {
  type        = number
  description = "Fewest workers (1 = always on)."
  default     = 1

  validation {
    condition     = var.min_size >= 1
    error_message = "At least 1: scaling on requests per target cannot start a worker from zero (nothing to measure)."
  }
}

variable "max_size" {
  type        = number
  description = "Most workers."
  default     = 3
}

variable "requests_per_target" {
  type        = number
  description = "Target of ALB requests per worker per minute for scaling."
  default     = 60
}

variable "health_check_grace_s" {
  type        = number
  description = "Seconds a new instance gets to boot, install and load the model before health checks count."
  default     = 1500
}

variable "worker_port" {
  type        = number
  description = "Port the worker listens on."
  default     = 8000
}

variable "release" {
  type        = string
  description = "Release staged by scripts/stage_artifacts.py under artifacts/<release>/; changing it rolls the fleet."

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", var.release))
    error_message = "Letters, digits, dot, dash, underscore (it is an S3 key segment)."
  }
}

variable "artifacts_prefix" {
  type        = string
  description = "Key prefix of the staged releases in the bucket."
  default     = "artifacts/"
}

variable "request_timeout_s" {
  type        = number
  description = "The worker's REQUEST_TIMEOUT_S, from the root's timeout budget (the ALB idle timeout and drain follow it)."
}

variable "endpoint_security_group_id" {
  type        = string
  description = "Security group of the VPC's interface endpoints (workers send HTTPS there, not to the internet)."
}

variable "worker_env" {
  type        = map(string)
  description = "Extra worker settings written into the environment file (the jobs module's JOBS_*, MAX_BATCH_SIZE, ...)."
  default     = {}
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the worker log group."
  default     = 30
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

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

variable "ami_ssm_parameter" {
  type        = string
  description = "SSM parameter holding the GPU Deep Learning AMI id."
  default     = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
}

variable "ami_id" {
  type        = string
  description = "An AMI id that overrides the SSM parameter (e.g. one with weights baked in)."
  default     = null
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

variable "source_archive_url" {
  type        = string
  description = "A .tar.gz of this repository at a release (e.g. GitHub's archive of a tag); the instance installs it with the worker-gpu extra."
}

variable "install_flash_attn" {
  type        = bool
  description = "Install flash-attn for the text model (may build from source for a long time)."
  default     = false
}

variable "model_id" {
  type        = string
  description = "Hugging Face id of the weights fetched once at boot."
  default     = "deepseek-community/DeepSeek-OCR-2"
}

variable "worker_env" {
  type        = map(string)
  description = "Extra worker settings (MAX_BATCH_SIZE, REQUEST_TIMEOUT_S, ...)."
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

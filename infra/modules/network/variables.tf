variable "name" {
  type        = string
  description = "Name prefix for every resource."
}

variable "cidr_block" {
  type        = string
  description = "CIDR of the VPC."
  default     = "10.40.0.0/16"
}

variable "az_count" {
  type        = number
  description = "Availability zones to span (public and private subnet in each)."
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "Use 2 to 4 availability zones (the ALBs need two)."
  }
}

variable "enable_nat" {
  type        = bool
  description = "One NAT gateway for the private subnets. Off: the workers boot from the staged release through the S3 gateway endpoint and reach AWS APIs through interface endpoints. The web app needs it (it calls the public API)."
  default     = false
}

variable "interface_endpoints" {
  type        = list(string)
  description = "AWS services reached through interface endpoints in the private subnets (Session Manager, CloudWatch Logs and metrics, EC2 tags for the CloudWatch agent, SQS and SNS for jobs)."
  default     = ["ssm", "ssmmessages", "ec2messages", "ec2", "logs", "monitoring", "sqs", "sns"]
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
}

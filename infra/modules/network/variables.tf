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
  description = "One NAT gateway for the private subnets (boot installs packages and fetches weights). Turn off for AMIs that carry everything."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
}

variable "bucket_name" {
  type        = string
  description = "Name of the results bucket (globally unique)."
}

variable "results_prefix" {
  type        = string
  description = "Key prefix of results (annotated.png, result.json)."
  default     = "results/"
}

variable "upload_prefix" {
  type        = string
  description = "Key prefix of presigned uploads."
  default     = "uploads/"
}

variable "results_expire_days" {
  type        = number
  description = "Days after which results are deleted."
  default     = 30
}

variable "uploads_expire_days" {
  type        = number
  description = "Days after which uploaded page images are deleted."
  default     = 1
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete a bucket that still holds objects."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
}

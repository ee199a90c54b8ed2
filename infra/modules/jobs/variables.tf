variable "name" {
  type        = string
  description = "Name prefix for the queue, DLQ, table, topic and policies."
}

variable "bucket_arn" {
  type        = string
  description = "ARN of the results bucket; workers read and write jobs/* there."
}

variable "upload_prefix" {
  type        = string
  description = "Key prefix of uploads in the results bucket (the edge checks a job's upload there)."
  default     = "uploads/"
}

variable "edge_role_name" {
  type        = string
  description = "Name of the edge Lambda's IAM role (gets: write job records, send the split message)."
}

variable "worker_role_name" {
  type        = string
  description = "Name of the worker instances' IAM role (gets: consume the queue, update records, publish)."
}

variable "worker_asg_name" {
  type        = string
  description = "Name of the worker Auto Scaling group that scales on the jobs backlog."
}

variable "max_receive_count" {
  type        = number
  description = "Deliveries of a page before it goes to the DLQ (the worker's JOBS_MAX_RECEIVE must match)."
  default     = 3
  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "SQS allows 1 to 1000 receives."
  }
}

variable "visibility_timeout_s" {
  type        = number
  description = "Queue visibility timeout; longer than a page (workers extend it while a page runs)."
  default     = 120
}

variable "backlog_per_instance" {
  type        = number
  description = "Target of visible messages per in-service worker for the scaling policy."
  default     = 40
}

variable "oldest_message_alarm_s" {
  type        = number
  description = "Alarm when the oldest waiting message is older than this (jobs are stuck or under-provisioned)."
  default     = 1800
}

variable "alarm_actions" {
  type        = list(string)
  description = "ARNs notified by the DLQ-depth and oldest-message alarms (e.g. the alarms SNS topic)."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
}

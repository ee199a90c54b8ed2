variable "budget_s" {
  type        = number
  description = "The one timeout budget: API Gateway's integration timeout in seconds (29 without a quota raise, up to 300)."
  default     = 29

  validation {
    condition     = var.budget_s >= 10 && var.budget_s <= 300 && floor(var.budget_s) == var.budget_s
    error_message = "A whole number of seconds from 10 to 300 (above 29 only after the integration-timeout quota is raised)."
  }
}

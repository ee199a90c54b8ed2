output "alb_dns_name" {
  description = "DNS name of the internal ALB."
  value       = aws_lb.this.dns_name
}

output "worker_url" {
  description = "Base URL of the workers as the edge calls them."
  value       = "http://${aws_lb.this.dns_name}"
}

output "alb_security_group_id" {
  description = "Security group of the internal ALB."
  value       = aws_security_group.alb.id
}

output "alb_arn_suffix" {
  description = "ARN suffix of the ALB (CloudWatch dimension)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the target group (CloudWatch dimension)."
  value       = aws_lb_target_group.this.arn_suffix
}

output "asg_name" {
  description = "Auto Scaling group of the workers."
  value       = aws_autoscaling_group.this.name
}

output "log_group_name" {
  description = "Log group of the workers."
  value       = aws_cloudwatch_log_group.worker.name
}

output "instance_role_name" {
  description = "IAM role of the worker instances."
  value       = aws_iam_role.worker.name
}

output "shared_secret_value" {
  description = "The edge -> worker shared secret (the edge Lambda's WORKER_SHARED_SECRET)."
  value       = aws_ssm_parameter.shared_secret.value
  sensitive   = true
}

output "shared_secret_parameter_name" {
  description = "SSM parameter holding the shared secret."
  value       = aws_ssm_parameter.shared_secret.name
}

output "user_data" {
  description = "The rendered boot script of the workers, environment file included (tests read it; holds no secret)."
  value       = local.user_data
}

output "request_timeout_s" {
  description = "The workers' REQUEST_TIMEOUT_S as written into their environment file."
  value       = tonumber(local.worker_env["REQUEST_TIMEOUT_S"])
}

output "instance_policy" {
  description = "The instance role's own inline policy (JSON); the jobs module adds its own next to it."
  value       = aws_iam_role_policy.worker.policy
}

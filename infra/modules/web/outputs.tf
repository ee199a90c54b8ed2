output "url" {
  description = "The web app's URL (point the domain at alb_dns_name)."
  value       = "https://${var.domain_name}"
}

output "alb_dns_name" {
  description = "DNS name of the public web ALB (CNAME or alias target of the domain)."
  value       = aws_lb.this.dns_name
}

output "user_pool_id" {
  description = "Cognito user pool: create the web app's users here."
  value       = aws_cognito_user_pool.this.id
}

output "alb_arn_suffix" {
  description = "ARN suffix of the web ALB."
  value       = aws_lb.this.arn_suffix
}

output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "The VPC's CIDR."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets (internet-facing load balancers, NAT)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (workers, Lambda, internal ALB, web app instance)."
  value       = aws_subnet.private[*].id
}

output "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint, for security-group egress to S3."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "endpoint_security_group_id" {
  description = "Security group of the interface endpoints (instances send HTTPS to it)."
  value       = aws_security_group.endpoints.id
}

output "nat_enabled" {
  description = "Whether the private subnets reach the internet through a NAT gateway."
  value       = var.enable_nat
}

output "dynamodb_prefix_list_id" {
  description = "Prefix list of the DynamoDB gateway endpoint, for security-group egress to DynamoDB."
  value       = aws_vpc_endpoint.dynamodb.prefix_list_id
}

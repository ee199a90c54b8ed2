resource "aws_security_group" "alb" {
  name        = "${var.name}-worker-alb"
  description = "Internal ALB in front of the GPU workers"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_from_callers" {
  for_each                     = var.alb_ingress_security_group_ids
  security_group_id            = aws_security_group.alb.id
  description                  = "HTTP from an allowed caller (the edge Lambda)"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 80
  to_port                      = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_workers" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the worker port"
  referenced_security_group_id = aws_security_group.worker.id
  ip_protocol                  = "tcp"
  from_port                    = var.worker_port
  to_port                      = var.worker_port
}

resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "GPU workers: the worker port from the ALB only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "worker_from_alb" {
  security_group_id            = aws_security_group.worker.id
  description                  = "Worker port from the internal ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = var.worker_port
  to_port                      = var.worker_port
}

# No internet: AWS APIs through the interface endpoints, S3 through its gateway endpoint.
resource "aws_vpc_security_group_egress_rule" "worker_endpoints" {
  security_group_id            = aws_security_group.worker.id
  description                  = "HTTPS to the interface endpoints (SSM, CloudWatch, SQS)"
  referenced_security_group_id = var.endpoint_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "worker_dynamodb" {
  security_group_id = aws_security_group.worker.id
  description       = "DynamoDB through the gateway endpoint (jobs)"
  prefix_list_id    = var.dynamodb_prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# Only with a NAT: job webhooks go to the callers' own HTTPS endpoints. Boot never needs it.
resource "aws_vpc_security_group_egress_rule" "worker_internet_https" {
  count             = var.internet_egress ? 1 : 0
  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to the internet through the NAT (job webhooks)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "worker_s3" {
  security_group_id = aws_security_group.worker.id
  description       = "S3 through the gateway endpoint"
  prefix_list_id    = var.s3_prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

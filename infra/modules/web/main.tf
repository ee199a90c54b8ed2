locals {
  tags     = merge(var.tags, { Module = "web" })
  web_port = 3000
}

data "aws_region" "current" {}

# ---- login: Cognito user pool behind the ALB (users are created by an admin; no self sign-up) ----

resource "aws_cognito_user_pool" "this" {
  name                     = "${var.name}-web"
  auto_verified_attributes = ["email"]
  username_attributes      = ["email"]
  mfa_configuration        = "OPTIONAL"
  software_token_mfa_configuration {
    enabled = true
  }
  admin_create_user_config {
    allow_admin_create_user_only = true
  }
  password_policy {
    minimum_length    = 12
    require_lowercase = true
    require_uppercase = true
    require_numbers   = true
    require_symbols   = false
  }
  tags = local.tags
}

resource "aws_cognito_user_pool_domain" "this" {
  domain       = var.cognito_domain_prefix
  user_pool_id = aws_cognito_user_pool.this.id
}

resource "aws_cognito_user_pool_client" "this" {
  name                                 = "${var.name}-web-alb"
  user_pool_id                         = aws_cognito_user_pool.this.id
  generate_secret                      = true
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "email"]
  callback_urls                        = ["https://${var.domain_name}/oauth2/idpresponse"]
  supported_identity_providers         = ["COGNITO"]
}

# ---- the public ALB: HTTPS with Cognito authentication, HTTP redirected ----

resource "aws_security_group" "alb" {
  name        = "${var.name}-web-alb"
  description = "Public web app ALB: HTTPS (and the HTTP redirect) from the allowed CIDRs"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from an allowed network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from an allowed network (redirected to HTTPS)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_web" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the web app instance"
  referenced_security_group_id = aws_security_group.instance.id
  ip_protocol                  = "tcp"
  from_port                    = local.web_port
  to_port                      = local.web_port
}

resource "aws_vpc_security_group_egress_rule" "alb_to_cognito" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS to the Cognito token endpoint (authenticate-cognito)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_lb" "this" {
  name                       = "${var.name}-web"
  internal                   = false
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 180 # Reflex keeps a websocket open; OCR may take 100 s
  tags                       = local.tags
}

resource "aws_lb_target_group" "this" {
  name     = "${var.name}-web"
  port     = local.web_port
  protocol = "HTTP"
  vpc_id   = var.vpc_id
  health_check {
    path    = "/ping"
    matcher = "200"
  }
  stickiness {
    type    = "lb_cookie"
    enabled = true
  }
  tags = local.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type  = "authenticate-cognito"
    order = 1
    authenticate_cognito {
      user_pool_arn              = aws_cognito_user_pool.this.arn
      user_pool_client_id        = aws_cognito_user_pool_client.this.id
      user_pool_domain           = aws_cognito_user_pool_domain.this.domain
      on_unauthenticated_request = "authenticate"
    }
  }

  default_action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = local.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
  tags = local.tags
}

# ---- the instance: Reflex in production mode on one port, behind the ALB only ----

resource "aws_security_group" "instance" {
  name        = "${var.name}-web-instance"
  description = "Web app instance: its port from the web ALB only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "instance_from_alb" {
  security_group_id            = aws_security_group.instance.id
  description                  = "Reflex from the web ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.web_port
  to_port                      = local.web_port
}

resource "aws_vpc_security_group_egress_rule" "instance_https" {
  security_group_id = aws_security_group.instance.id
  description       = "HTTPS out: the API, S3 uploads, packages, SSM"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "instance_http" {
  security_group_id = aws_security_group.instance.id
  description       = "HTTP out: Ubuntu package mirrors"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_ssm_parameter" "api_key" {
  name        = "/ocr/${var.name}/web-api-key"
  description = "The web app's API key for the edge"
  type        = "SecureString"
  value       = var.web_api_key_value
  tags        = local.tags
}

resource "aws_iam_role" "instance" {
  name = "${var.name}-web"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "instance" {
  name = "api-key-and-release"
  role = aws_iam_role.instance.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "ApiKey", Effect = "Allow", Action = ["ssm:GetParameter"], Resource = aws_ssm_parameter.api_key.arn },
      { Sid = "Release", Effect = "Allow", Action = ["s3:GetObject"], Resource = "${var.bucket_arn}/${var.artifacts_prefix}${var.release}/web/*" },
      { Sid = "Manifest", Effect = "Allow", Action = ["s3:GetObject"], Resource = "${var.bucket_arn}/${var.artifacts_prefix}${var.release}/manifest.json" },
    ]
  })
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-web"
  role = aws_iam_role.instance.name
  tags = local.tags
}

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-web-"
  image_id               = var.ami_id # pinned Ubuntu 24.04 (Python 3.12)
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.instance.id]
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/sda1"
    ebs {
      volume_size = 30
      volume_type = "gp3"
      encrypted   = true
    }
  }

  user_data = base64gzip(templatefile("${path.module}/../../boot/web_user_data.sh.tftpl", {
    release          = var.release
    bucket           = var.bucket_name
    artifacts_prefix = var.artifacts_prefix
    region           = data.aws_region.current.name
    edge_url         = var.edge_url
    api_key_param    = aws_ssm_parameter.api_key.name
    web_port         = local.web_port
    fetch_script     = file("${path.module}/../../boot/fetch_release.py")
  }))

  lifecycle {
    precondition {
      condition     = var.internet_egress
      error_message = "The web app needs internet egress (enable_nat = true): it calls the public API and its frontend build fetches npm packages."
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-web", Release = var.release })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  name                      = "${var.name}-web"
  min_size                  = 1
  max_size                  = 1
  desired_capacity          = 1
  vpc_zone_identifier       = var.private_subnet_ids
  target_group_arns         = [aws_lb_target_group.this.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 900

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # A new release or AMI replaces the instance: the new one first, then the old one leaves.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = 900
    }
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-web"
    propagate_at_launch = true
  }
}

resource "aws_lb" "this" {
  name                       = "${var.name}-workers"
  internal                   = true
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.private_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # Longer than the worker's REQUEST_TIMEOUT_S so the worker's own 504 arrives first.
  idle_timeout = ceil(var.request_timeout_s) + 10
  tags         = local.tags
}

resource "aws_lb_target_group" "this" {
  name                 = "${var.name}-workers"
  port                 = var.worker_port
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  deregistration_delay = ceil(var.request_timeout_s) + 5 # in-flight OCR finishes before an instance leaves

  health_check {
    path                = "/health" # 503 until the model is loaded and has run once
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = local.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = local.tags
}

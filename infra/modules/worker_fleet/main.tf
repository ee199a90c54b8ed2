locals {
  tags = merge(var.tags, { Module = "worker_fleet" })
  worker_env = merge({
    HOST              = "0.0.0.0"
    PORT              = tostring(var.worker_port)
    OCR_ENGINE        = "deepseek"
    RESULTS_BUCKET    = var.bucket_name
    RESULTS_PREFIX    = var.results_prefix
    UPLOAD_PREFIX     = var.upload_prefix
    AWS_REGION        = data.aws_region.current.name
    REQUEST_TIMEOUT_S = tostring(var.request_timeout_s)
  }, var.worker_env)
  boot = "${path.module}/../../boot"
  # The boot script's inputs; tests/boot renders the same template with its own values.
  user_data = templatefile("${local.boot}/worker_user_data.sh.tftpl", {
    release          = var.release
    bucket           = var.bucket_name
    artifacts_prefix = var.artifacts_prefix
    region           = data.aws_region.current.name
    secret_parameter = aws_ssm_parameter.shared_secret.name
    require_gpu      = "1"
    stop_timeout_s   = tostring(ceil(var.request_timeout_s) + 10)
    env_file         = join("\n", [for key in sort(keys(local.worker_env)) : "${key}=${local.worker_env[key]}"])
    fetch_script     = file("${local.boot}/fetch_release.py")
    service_unit     = file("${local.boot}/ocr-worker.service.in")
    health_check     = file("${local.boot}/health_check.sh")
    agent_config     = templatefile("${local.boot}/cloudwatch-agent.json.tftpl", { log_group = aws_cloudwatch_log_group.worker.name })
  })
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "worker" {
  name              = "/ocr/${var.name}/worker"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-worker-"
  image_id               = var.ami_id # pinned: a new AMI is a reviewed change that rolls the fleet
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.worker.id]
  update_default_version = true
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/sda1"
    ebs {
      volume_size           = var.root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # gzip: the boot script carries its fetcher and unit; cloud-init unpacks it (16 KB user data limit).
  user_data = base64gzip(local.user_data)

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-worker", Release = var.release })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.tags
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  name = "${var.name}-workers"
  # No desired_capacity: the ASG starts at min_size and scaling owns the count afterwards; an apply
  # must not shrink a fleet that scaled out.
  min_size                  = var.min_size
  max_size                  = var.max_size
  vpc_zone_identifier       = var.private_subnet_ids
  target_group_arns         = [aws_lb_target_group.this.arn]
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_s
  default_instance_warmup   = var.health_check_grace_s

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # A new launch template version (release, AMI, settings) replaces the fleet: new workers first,
  # old ones leave only once the new ones are healthy.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = var.health_check_grace_s
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-worker" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}

# Request-count tracking needs a healthy target to measure: it scales 1..N, never up from zero, hence
# min_size >= 1 (variables.tf).
resource "aws_autoscaling_policy" "requests" {
  name                   = "${var.name}-requests-per-worker"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.this.arn_suffix}"
    }
    target_value = var.requests_per_target
  }
}

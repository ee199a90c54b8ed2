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
    REQUEST_TIMEOUT_S = "100"
    HF_HUB_OFFLINE    = "1"
  }, var.worker_env)
}

data "aws_region" "current" {}

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0
  name  = var.ami_ssm_parameter
}

resource "aws_cloudwatch_log_group" "worker" {
  name              = "/ocr/${var.name}/worker"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-worker-"
  image_id               = coalesce(var.ami_id, try(nonsensitive(data.aws_ssm_parameter.ami[0].value), null))
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

  user_data = base64encode(templatefile("${path.module}/../../boot/worker_user_data.sh.tftpl", {
    source_archive_url = var.source_archive_url
    install_flash_attn = var.install_flash_attn
    model_id           = var.model_id
    worker_env         = local.worker_env
    log_group          = aws_cloudwatch_log_group.worker.name
    service_unit       = file("${path.module}/../../boot/ocr-worker.service")
    health_check       = file("${path.module}/../../boot/health_check.sh")
    agent_config = templatefile("${path.module}/../../boot/cloudwatch-agent.json.tftpl", {
      log_group = aws_cloudwatch_log_group.worker.name
    })
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-worker" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.tags
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  name                      = "${var.name}-workers"
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.min_size
  vpc_zone_identifier       = var.private_subnet_ids
  target_group_arns         = [aws_lb_target_group.this.arn]
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_s
  default_instance_warmup   = var.health_check_grace_s

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
    }
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

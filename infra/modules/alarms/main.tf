locals {
  tags           = merge(var.tags, { Module = "alarms" })
  actions        = [aws_sns_topic.this.arn]
  api_dimensions = { ApiName = var.api_name, Stage = var.stage_name }
}

data "aws_caller_identity" "current" {}

# CloudWatch cannot use the AWS-managed alias/aws/sns key (its policy is fixed), so alarms would never
# reach an encrypted topic: a customer-managed key whose policy lets CloudWatch encrypt for SNS.
resource "aws_kms_key" "alarms" {
  description         = "${var.name}: alarm topic encryption (CloudWatch may publish)"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchPublishes"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ]
  })
  tags = local.tags
}

resource "aws_kms_alias" "alarms" {
  name          = "alias/${var.name}-alarms"
  target_key_id = aws_kms_key.alarms.key_id
}

resource "aws_sns_topic" "this" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
  tags              = local.tags
}

# Only this account's CloudWatch alarms may publish.
resource "aws_sns_topic_policy" "this" {
  arn = aws_sns_topic.this.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CloudWatchAlarms"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.this.arn
      Condition = {
        StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:aws:cloudwatch:*:${data.aws_caller_identity.current.account_id}:alarm:*" }
      }
    }]
  })
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${var.name}-api-5xx-rate"
  alarm_description   = "More than ${var.error_rate_threshold * 100}% of API requests answered 5xx."
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 3
  threshold           = var.error_rate_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, errors / requests, 0)"
    label       = "5xx rate"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5XXError"
      dimensions  = local.api_dimensions
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = local.api_dimensions
      period      = 300
      stat        = "Sum"
    }
  }
  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "api_p95_latency" {
  alarm_name          = "${var.name}-api-p95-latency"
  alarm_description   = "API p95 latency above ${var.p95_latency_ms_threshold} ms."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = local.api_dimensions
  extended_statistic  = "p95"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.p95_latency_ms_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_workers" {
  alarm_name          = "${var.name}-unhealthy-workers"
  alarm_description   = "A worker behind the internal ALB is unhealthy (or none is healthy)."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = var.worker_alb_arn_suffix, TargetGroup = var.worker_target_group_arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "gpu_memory" {
  alarm_name          = "${var.name}-gpu-memory"
  alarm_description   = "GPU memory in use above ${var.gpu_memory_percent_threshold}% (CloudWatch agent, NVIDIA metrics)."
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 3
  threshold           = var.gpu_memory_percent_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  metric_query {
    id          = "percent"
    expression  = "100 * used / total"
    label       = "GPU memory %"
    return_data = true
  }
  metric_query {
    id = "used"
    metric {
      namespace   = "CWAgent"
      metric_name = "nvidia_smi_memory_used"
      dimensions  = { AutoScalingGroupName = var.worker_asg_name }
      period      = 60
      stat        = "Maximum"
    }
  }
  metric_query {
    id = "total"
    metric {
      namespace   = "CWAgent"
      metric_name = "nvidia_smi_memory_total"
      dimensions  = { AutoScalingGroupName = var.worker_asg_name }
      period      = 60
      stat        = "Maximum"
    }
  }
  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  alarm_name          = "${var.name}-edge-lambda-errors"
  alarm_description   = "The edge Lambda raised errors (crashes or timeouts, not 4xx answers)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.api_function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = local.tags
}

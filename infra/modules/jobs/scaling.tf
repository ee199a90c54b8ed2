# The worker fleet follows the jobs backlog: target tracking on visible messages per in-service worker,
# plus a step policy that starts the first worker when messages wait and none is in service (target
# tracking cannot divide by zero instances, so on its own it would never scale up from zero).

resource "aws_autoscaling_policy" "backlog" {
  name                   = "${var.name}-jobs-backlog-per-instance"
  autoscaling_group_name = var.worker_asg_name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.backlog_per_instance
    customized_metric_specification {
      metrics {
        id          = "visible"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.this.name
            }
          }
        }
      }
      metrics {
        id          = "in_service"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"
            dimensions {
              name  = "AutoScalingGroupName"
              value = var.worker_asg_name
            }
          }
        }
      }
      metrics {
        id          = "backlog_per_instance"
        label       = "Visible jobs messages per in-service worker"
        expression  = "visible / MAX([in_service, 1])"
        return_data = true
      }
    }
  }
}

resource "aws_autoscaling_policy" "from_zero" {
  name                   = "${var.name}-jobs-start-first-worker"
  autoscaling_group_name = var.worker_asg_name
  policy_type            = "StepScaling"
  adjustment_type        = "ExactCapacity"

  step_adjustment {
    metric_interval_lower_bound = 0
    scaling_adjustment          = 1
  }
}

resource "aws_cloudwatch_metric_alarm" "work_waiting_without_workers" {
  alarm_name          = "${var.name}-jobs-waiting-without-workers"
  alarm_description   = "Jobs wait and no worker is in service: start one."
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 1
  threshold           = 0
  alarm_actions       = [aws_autoscaling_policy.from_zero.arn]
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "waiting"
    expression  = "IF(in_service < 1, visible, 0)"
    label       = "Messages waiting while no worker is in service"
    return_data = true
  }
  metric_query {
    id = "visible"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      period      = 60
      stat        = "Sum"
      dimensions  = { QueueName = aws_sqs_queue.this.name }
    }
  }
  metric_query {
    id = "in_service"
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupInServiceInstances"
      period      = 60
      stat        = "Average"
      dimensions  = { AutoScalingGroupName = var.worker_asg_name }
    }
  }
  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name}-jobs-dlq-depth"
  alarm_description   = "Pages in the jobs DLQ: a page failed every attempt (its job ended partial)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  alarm_name          = "${var.name}-jobs-oldest-message-age"
  alarm_description   = "The oldest jobs message waits too long: workers are stuck or too few."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.this.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.oldest_message_alarm_s
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = local.tags
}

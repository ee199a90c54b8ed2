output "topic_arn" {
  description = "SNS topic the alarms notify."
  value       = aws_sns_topic.this.arn
}

output "alarm_names" {
  description = "The alarms."
  value = [
    aws_cloudwatch_metric_alarm.api_5xx_rate.alarm_name,
    aws_cloudwatch_metric_alarm.api_p95_latency.alarm_name,
    aws_cloudwatch_metric_alarm.unhealthy_workers.alarm_name,
    aws_cloudwatch_metric_alarm.gpu_memory.alarm_name,
    aws_cloudwatch_metric_alarm.lambda_errors.alarm_name,
  ]
}

output "kms_key_arn" {
  description = "Customer-managed key of the alarm topic."
  value       = aws_kms_key.alarms.arn
}

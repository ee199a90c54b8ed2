resource "aws_iam_role" "worker" {
  name = "${var.name}-worker"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

# Least privilege: read and write results, read uploads and this release's artifacts, read the one
# shared-secret parameter; no delete, nothing else in the bucket or in SSM. s3:ListBucket on the bucket is
# what S3 checks for HeadBucket, /health's S3 probe (gpu_worker/storage.py): without it every probe is a
# 403, the worker reports S3 down, refuses s3:// images with 503 and spools every result.
resource "aws_iam_role_policy" "worker" {
  name = "worker"
  role = aws_iam_role.worker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Results"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject"]
        Resource = "${var.bucket_arn}/${var.results_prefix}*"
      },
      {
        Sid      = "ProbeBucket"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = var.bucket_arn
      },
      {
        Sid      = "Uploads"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = "${var.bucket_arn}/${var.upload_prefix}*"
      },
      {
        Sid      = "Release"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = "${var.bucket_arn}/${var.artifacts_prefix}${var.release}/*"
      },
      {
        Sid      = "SharedSecret"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter"]
        Resource = aws_ssm_parameter.shared_secret.arn
      },
      {
        # Session Manager (no SSH) and the SSM agent, without AmazonSSMManagedInstanceCore, which
        # would also grant ssm:GetParameter on every parameter of the account.
        Sid      = "SsmAgent"
        Effect   = "Allow"
        Action   = ["ssm:UpdateInstanceInformation"]
        Resource = "arn:aws:ec2:${data.aws_region.current.name}:*:instance/*"
      },
      {
        # ssmmessages and ec2messages have no resource types: "*" is the only form they take.
        Sid    = "SessionManager"
        Effect = "Allow"
        Action = [
          "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
          "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
          "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
          "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
        ]
        Resource = "*"
      },
      {
        Sid      = "OwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
        Resource = "${aws_cloudwatch_log_group.worker.arn}:*"
      },
      {
        Sid       = "AgentMetrics"
        Effect    = "Allow"
        Action    = ["cloudwatch:PutMetricData"]
        Resource  = "*"
        Condition = { StringEquals = { "cloudwatch:namespace" = "CWAgent" } }
      },
      {
        Sid      = "AgentTags"
        Effect   = "Allow"
        Action   = ["ec2:DescribeTags"]
        Resource = "*"
      },
    ]
  })
}

resource "aws_iam_instance_profile" "worker" {
  name = "${var.name}-worker"
  role = aws_iam_role.worker.name
  tags = local.tags
}

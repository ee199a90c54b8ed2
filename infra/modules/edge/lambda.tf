resource "aws_security_group" "lambda" {
  name        = "${var.name}-edge-lambda"
  description = "Edge Lambda: out to the internal ALB, S3, DynamoDB and the VPC endpoints only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_alb" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "HTTP to the internal worker ALB"
  referenced_security_group_id = var.worker_alb_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 80
  to_port                      = 80
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_s3" {
  security_group_id = aws_security_group.lambda.id
  description       = "S3 through the gateway endpoint (results, presigned uploads)"
  prefix_list_id    = var.s3_prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_endpoints" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "HTTPS to the interface endpoints (SQS, SNS for jobs)"
  referenced_security_group_id = var.endpoint_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_dynamodb" {
  security_group_id = aws_security_group.lambda.id
  description       = "DynamoDB through the gateway endpoint (jobs)"
  prefix_list_id    = var.dynamodb_prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_iam_role" "lambda" {
  name = "${var.name}-edge"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "lambda_vpc" {
  role       = aws_iam_role.lambda.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# Read (and sign GETs for) results; sign POSTs under uploads. Nothing else in the bucket.
resource "aws_iam_role_policy" "lambda" {
  name = "edge"
  role = aws_iam_role.lambda.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "ReadResults", Effect = "Allow", Action = ["s3:GetObject"], Resource = "${var.bucket_arn}/${var.results_prefix}*" },
      { Sid = "SignUploads", Effect = "Allow", Action = ["s3:PutObject"], Resource = "${var.bucket_arn}/${var.upload_prefix}*" },
      {
        Sid      = "OwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.api.arn}:*"
      },
    ]
  })
}

resource "aws_cloudwatch_log_group" "api" {
  name              = "/aws/lambda/${var.name}-edge-api"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "authorizer" {
  name              = "/aws/lambda/${var.name}-edge-authorizer"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_lambda_function" "api" {
  function_name                  = "${var.name}-edge-api"
  role                           = aws_iam_role.lambda.arn
  filename                       = var.lambda_zip_path
  source_code_hash               = filebase64sha256(var.lambda_zip_path)
  handler                        = var.api_handler
  runtime                        = "python3.11"
  architectures                  = ["x86_64"]
  timeout                        = var.lambda_timeout_s
  memory_size                    = var.lambda_memory_mb
  reserved_concurrent_executions = var.reserved_concurrency # -1: none (new accounts may have only 10)

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  environment {
    variables = merge({
      WORKER_URL                   = var.worker_url
      WORKER_TIMEOUT_S             = tostring(var.worker_timeout_s)
      WORKER_SHARED_SECRET         = var.worker_shared_secret
      MAX_BODY_BYTES               = tostring(local.max_body_bytes)
      RESULTS_BUCKET               = var.bucket_name
      RESULTS_PREFIX               = var.results_prefix
      UPLOAD_PREFIX                = var.upload_prefix
      POWERTOOLS_SERVICE_NAME      = "edge-api"
      POWERTOOLS_METRICS_NAMESPACE = "DeepSeekOCR"
      POWERTOOLS_LOG_LEVEL         = "INFO"
    }, var.edge_env)
  }

  tracing_config {
    mode = "PassThrough"
  }

  depends_on = [aws_cloudwatch_log_group.api, aws_iam_role_policy_attachment.lambda_vpc]
  tags       = local.tags
}

# The authorizer only reads headers: it needs no VPC, no bucket, no secret; its own role may write
# its own logs and nothing else.
resource "aws_iam_role" "authorizer" {
  name = "${var.name}-edge-authorizer"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "authorizer" {
  name = "own-logs"
  role = aws_iam_role.authorizer.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "OwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = "${aws_cloudwatch_log_group.authorizer.arn}:*"
    }]
  })
}

resource "aws_lambda_function" "authorizer" {
  function_name    = "${var.name}-edge-authorizer"
  role             = aws_iam_role.authorizer.arn
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  handler          = var.authorizer_handler
  runtime          = "python3.11"
  architectures    = ["x86_64"]
  timeout          = 5
  memory_size      = 256

  tracing_config {
    mode = "PassThrough"
  }

  depends_on = [aws_cloudwatch_log_group.authorizer, aws_iam_role_policy.authorizer]
  tags       = local.tags
}

# Least privilege: the edge writes job records and sends the split message; workers consume the queue,
# count pages, publish completions and keep the jobs/* prefix of the results bucket.

locals {
  edge_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "JobRecords"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]
        Resource = [aws_dynamodb_table.this.arn, "${aws_dynamodb_table.this.arn}/index/by_owner"]
      },
      { Sid = "SplitMessages", Effect = "Allow", Action = ["sqs:SendMessage"], Resource = [aws_sqs_queue.this.arn] },
    ]
  }
  worker_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ConsumeJobs"
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage", "sqs:GetQueueAttributes"]
        Resource = [aws_sqs_queue.this.arn]
      },
      {
        # TransactWriteItems is authorised by the UpdateItem of each item in it.
        Sid      = "CountPages"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:BatchWriteItem"]
        Resource = [aws_dynamodb_table.this.arn]
      },
      { Sid = "Completions", Effect = "Allow", Action = ["sns:Publish"], Resource = [aws_sns_topic.completions.arn] },
      { Sid = "JobFiles", Effect = "Allow", Action = ["s3:GetObject", "s3:PutObject"], Resource = ["${var.bucket_arn}/jobs/*"] },
    ]
  }
}

# Inline policies on the roles passed in by name: they live and go with this module.
resource "aws_iam_role_policy" "edge" {
  name   = "${var.name}-jobs-edge"
  role   = var.edge_role_name
  policy = jsonencode(local.edge_policy)
}

resource "aws_iam_role_policy" "worker" {
  name   = "${var.name}-jobs-worker"
  role   = var.worker_role_name
  policy = jsonencode(local.worker_policy)
}

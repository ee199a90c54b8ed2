# Part 1: network, results bucket, worker fleet. Each module is applied alone against the mock provider,
# so its resources can be asserted on.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                           = "test"
  vpc_id                         = "vpc-0123456789abcdef0"
  private_subnet_ids             = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
  s3_prefix_list_id              = "pl-0123456789abcdef0"
  bucket_name                    = "test-ocr-results"
  bucket_arn                     = "arn:aws:s3:::test-ocr-results"
  alb_ingress_security_group_ids = { edge_lambda = "sg-0123456789abcdef0" }
  endpoint_security_group_id     = "sg-0eeeeeeeeeeeeeee5"
  dynamodb_prefix_list_id        = "pl-0fedcba9876543210"
  release                        = "2026-11-29-r1"
  ami_id                         = "ami-0123456789abcdef0"
  request_timeout_s              = 25
}

run "timeouts_nest_strictly_for_a_29_s_budget" {
  command = plan
  module {
    source = "../../modules/timeouts"
  }
  variables {
    budget_s = 29
  }
  assert {
    condition     = output.worker_request_timeout_s < output.edge_worker_timeout_s && output.edge_worker_timeout_s < output.lambda_timeout_s && output.lambda_timeout_s * 1000 < output.integration_timeout_ms && output.integration_timeout_ms == 29000
    error_message = "worker < edge read < Lambda < integration (29 s)"
  }
}

run "timeouts_nest_strictly_for_a_120_s_budget" {
  command = plan
  module {
    source = "../../modules/timeouts"
  }
  variables {
    budget_s = 120
  }
  assert {
    condition     = output.worker_request_timeout_s < output.edge_worker_timeout_s && output.edge_worker_timeout_s < output.lambda_timeout_s && output.lambda_timeout_s * 1000 < output.integration_timeout_ms && output.integration_timeout_ms == 120000
    error_message = "worker < edge read < Lambda < integration (120 s)"
  }
}

run "a_budget_beyond_api_gateway_is_refused" {
  command = plan
  module {
    source = "../../modules/timeouts"
  }
  variables {
    budget_s = 301
  }
  expect_failures = [var.budget_s]
}

run "network_spans_two_azs_privately_with_endpoints_and_no_nat_by_default" {
  command = apply
  module {
    source = "../../modules/network"
  }
  assert {
    condition     = length(aws_subnet.private) == 2 && length(aws_subnet.public) == 2
    error_message = "two private and two public subnets"
  }
  assert {
    condition     = aws_subnet.private[0].availability_zone != aws_subnet.private[1].availability_zone
    error_message = "subnets in two AZs"
  }
  assert {
    condition     = length(aws_nat_gateway.this) == 0 && length(aws_route.private_nat) == 0 && aws_vpc_endpoint.s3.vpc_endpoint_type == "Gateway"
    error_message = "NAT off by default; S3 through its gateway endpoint"
  }
  assert {
    condition = toset([for k, e in aws_vpc_endpoint.interface : k if e.vpc_endpoint_type == "Interface" && e.private_dns_enabled]) == toset(
    ["ssm", "ssmmessages", "ec2messages", "ec2", "logs", "monitoring", "sqs", "sns"])
    error_message = "interface endpoints with private DNS for SSM, Session Manager, EC2 tags, CloudWatch Logs and metrics, SQS, SNS"
  }
  assert {
    condition     = aws_vpc_endpoint.dynamodb.vpc_endpoint_type == "Gateway" && contains(aws_vpc_endpoint.dynamodb.route_table_ids, aws_route_table.private.id)
    error_message = "DynamoDB (the jobs table) through its gateway endpoint from the private subnets"
  }
  assert {
    condition     = alltrue([for e in aws_vpc_endpoint.interface : e.subnet_ids == toset(aws_subnet.private[*].id) && e.service_name == "com.amazonaws.us-west-2.${split(".", e.service_name)[3]}"])
    error_message = "the endpoints sit in the private subnets, in the region"
  }
  assert {
    condition     = alltrue([for s in aws_subnet.public : !s.map_public_ip_on_launch])
    error_message = "no instance gets a public IP by default"
  }
}

run "nat_can_be_turned_on" {
  command = plan
  module {
    source = "../../modules/network"
  }
  variables {
    enable_nat = true
  }
  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_route.private_nat) == 1
    error_message = "one NAT when enable_nat is true"
  }
}

run "bucket_is_private_encrypted_tls_only_and_expires" {
  command = apply
  module {
    source = "../../modules/results_bucket"
  }
  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.this.block_public_acls,
      aws_s3_bucket_public_access_block.this.block_public_policy,
      aws_s3_bucket_public_access_block.this.ignore_public_acls,
      aws_s3_bucket_public_access_block.this.restrict_public_buckets,
    ])
    error_message = "all four public-access blocks on"
  }
  assert {
    condition     = one(aws_s3_bucket_ownership_controls.this.rule).object_ownership == "BucketOwnerEnforced"
    error_message = "bucket owner enforced (no ACLs)"
  }
  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "server-side encryption by default"
  }
  assert {
    condition = anytrue([
      for st in jsondecode(aws_s3_bucket_policy.this.policy).Statement :
      st.Effect == "Deny" && st.Condition.Bool["aws:SecureTransport"] == "false"
    ])
    error_message = "the bucket policy denies non-TLS access"
  }
  assert {
    condition = toset([for r in aws_s3_bucket_lifecycle_configuration.this.rule : r.id]) == toset(
    ["expire-results", "expire-uploads", "abort-incomplete-multipart"])
    error_message = "results, uploads and incomplete multipart uploads expire"
  }
  assert {
    condition     = alltrue([for r in aws_s3_bucket_lifecycle_configuration.this.rule : r.id == "abort-incomplete-multipart" || !startswith(r.filter[0].prefix, "artifacts/")])
    error_message = "staged releases never expire"
  }
}

run "worker_fleet_is_internal_locked_down_and_least_privileged" {
  command = apply
  module {
    source = "../../modules/worker_fleet"
  }

  assert {
    condition     = aws_lb.this.internal
    error_message = "the worker ALB is internal"
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.worker_from_alb.referenced_security_group_id == aws_security_group.alb.id && aws_vpc_security_group_ingress_rule.worker_from_alb.cidr_ipv4 == null
    error_message = "the worker port admits only the ALB's security group"
  }
  assert {
    condition     = alltrue([for r in aws_vpc_security_group_ingress_rule.alb_from_callers : r.cidr_ipv4 == null && r.cidr_ipv6 == null])
    error_message = "the ALB admits security groups only, never an address range"
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.alb_from_callers["edge_lambda"].referenced_security_group_id == "sg-0123456789abcdef0"
    error_message = "the edge Lambda's group may call the ALB"
  }
  assert {
    condition     = aws_lb_target_group.this.health_check[0].path == "/health" && aws_lb_target_group.this.health_check[0].matcher == "200"
    error_message = "the target group checks /health (503 until the model is loaded)"
  }
  assert {
    condition     = aws_launch_template.this.metadata_options[0].http_tokens == "required"
    error_message = "IMDSv2 required"
  }
  assert {
    condition     = alltrue([for b in aws_launch_template.this.block_device_mappings : b.ebs[0].encrypted == "true" && b.ebs[0].volume_type == "gp3" && b.ebs[0].volume_size == 100])
    error_message = "encrypted 100 GB gp3 volumes"
  }
  assert {
    condition     = aws_launch_template.this.instance_type == "g6.xlarge" && aws_launch_template.this.key_name == null
    error_message = "g6.xlarge and no SSH key pair"
  }
  assert {
    condition     = aws_autoscaling_group.this.min_size == 1 && aws_autoscaling_group.this.health_check_type == "ELB" && aws_autoscaling_group.this.health_check_grace_period >= 900
    error_message = "always one worker; ELB health with a grace long enough to load the model"
  }
  assert {
    condition     = aws_launch_template.this.image_id == "ami-0123456789abcdef0"
    error_message = "the AMI is the pinned id, never a 'latest' parameter"
  }
  assert {
    condition     = aws_autoscaling_group.this.instance_refresh[0].strategy == "Rolling" && aws_autoscaling_group.this.instance_refresh[0].preferences[0].min_healthy_percentage == 100 && aws_autoscaling_group.this.launch_template[0].version == tostring(aws_launch_template.this.latest_version)
    error_message = "a new launch template version (release) rolls the fleet, keeping capacity"
  }
  assert {
    condition     = strcontains(output.user_data, "PREFIX='artifacts/2026-11-29-r1/'") && strcontains(output.user_data, "REQUEST_TIMEOUT_S=25") && strcontains(output.user_data, "SECRET_PARAMETER='/ocr/test/worker-shared-secret'")
    error_message = "the boot fetches this release, writes the budget's worker timeout and reads the secret's parameter"
  }
  assert {
    condition     = !strcontains(output.user_data, "huggingface") && !strcontains(output.user_data, "apt-get") && strcontains(output.user_data, "--no-index")
    error_message = "the worker boot needs no internet: no hub, no apt, pip --no-index"
  }
  assert {
    condition     = aws_lb.this.idle_timeout > 25 && aws_lb_target_group.this.deregistration_delay > 25
    error_message = "the ALB waits longer than the worker's own timeout, and drains in-flight requests"
  }
  assert {
    condition     = aws_autoscaling_policy.requests.target_tracking_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ALBRequestCountPerTarget"
    error_message = "scaling tracks ALB requests per target"
  }
  assert {
    condition = alltrue(flatten([
      for st in jsondecode(aws_iam_role_policy.worker.policy).Statement : [
        for action in flatten([st.Action]) : (!can(regex("^s3:(List|Delete)", action)) || (action == "s3:ListBucket" && st.Resource == "arn:aws:s3:::test-ocr-results")) && action != "s3:*" && action != "*"
      ]
    ]))
    error_message = "the instance role cannot delete in the bucket, and lists only for HeadBucket (the bucket itself)"
  }
  assert {
    condition     = anytrue([for st in jsondecode(aws_iam_role_policy.worker.policy).Statement : st.Effect == "Allow" && st.Action == ["s3:ListBucket"] && st.Resource == "arn:aws:s3:::test-ocr-results"])
    error_message = "the worker's /health S3 probe is HeadBucket, which S3 allows only with s3:ListBucket: without it S3 always looks down"
  }
  assert {
    condition = toset(flatten([
      for st in jsondecode(aws_iam_role_policy.worker.policy).Statement : [for r in flatten([st.Resource]) : r if startswith(r, "arn:aws:s3")]
    ])) == toset(["arn:aws:s3:::test-ocr-results", "arn:aws:s3:::test-ocr-results/results/*", "arn:aws:s3:::test-ocr-results/uploads/*", "arn:aws:s3:::test-ocr-results/artifacts/2026-11-29-r1/*"])
    error_message = "S3 objects only under results/, uploads/ and this release's artifacts (the bucket itself: HeadBucket)"
  }
  assert {
    condition = [for st in jsondecode(aws_iam_role_policy.worker.policy).Statement : st.Resource if contains(flatten([st.Action]), "ssm:GetParameter")] == [aws_ssm_parameter.shared_secret.arn] && alltrue([
    for st in jsondecode(aws_iam_role_policy.worker.policy).Statement : !contains(flatten([st.Action]), "ssm:GetParameters") && !contains(flatten([st.Action]), "ssm:*")])
    error_message = "the instances may read one parameter: the shared secret"
  }
  assert {
    condition     = aws_ssm_parameter.shared_secret.type == "SecureString" && length(aws_ssm_parameter.shared_secret.value) >= 32
    error_message = "the shared secret is a generated SecureString"
  }
  assert {
    condition     = anytrue([for st in jsondecode(aws_iam_role_policy.worker.policy).Statement : contains(st.Action, "ssmmessages:OpenDataChannel")])
    error_message = "SSM Session Manager instead of SSH"
  }
  assert {
    condition     = aws_vpc_security_group_egress_rule.worker_endpoints.referenced_security_group_id == "sg-0eeeeeeeeeeeeeee5" && aws_vpc_security_group_egress_rule.worker_s3.prefix_list_id == "pl-0123456789abcdef0"
    error_message = "workers send HTTPS only to the interface endpoints and S3, never to the internet"
  }
  assert {
    condition     = length(aws_vpc_security_group_egress_rule.worker_internet_https) == 0 && aws_vpc_security_group_egress_rule.worker_dynamodb.prefix_list_id == "pl-0fedcba9876543210"
    error_message = "without a NAT no rule to the internet; DynamoDB through its endpoint"
  }
}

run "a_worker_fleet_cannot_be_scaled_to_zero" {
  command = plan
  module {
    source = "../../modules/worker_fleet"
  }
  variables {
    min_size = 0
  }
  expect_failures = [var.min_size]
}

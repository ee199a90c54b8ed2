# Part 2: API Gateway with keys, the edge Lambda, the web app behind a login, alarms.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = aws_iam_role.authorizer
  values = { arn = "arn:aws:iam::123456789012:role/authorizer" }
}

variables {
  name                         = "test"
  vpc_id                       = "vpc-0123456789abcdef0"
  private_subnet_ids           = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
  public_subnet_ids            = ["subnet-0ccccccccccccccc3", "subnet-0ddddddddddddddd4"]
  s3_prefix_list_id            = "pl-0123456789abcdef0"
  worker_alb_security_group_id = "sg-0aaaaaaaaaaaaaaa1"
  endpoint_security_group_id   = "sg-0eeeeeeeeeeeeeee5"
  dynamodb_prefix_list_id      = "pl-0fedcba9876543210"
  worker_url                   = "http://internal-test.us-west-2.elb.amazonaws.com"
  lambda_zip_path              = "tests/fixtures/edge_lambda.zip"
  bucket_name                  = "test-ocr-results"
  bucket_arn                   = "arn:aws:s3:::test-ocr-results"
  api_key_names                = ["team-a", "team-b"]
  integration_timeout_ms       = 29000
  lambda_timeout_s             = 28
  worker_timeout_s             = 27
  worker_shared_secret         = "test-shared-secret-value"
}

run "every_method_needs_a_key_through_the_request_authorizer" {
  command = apply
  module {
    source = "../../modules/edge"
  }
  assert {
    condition     = length(aws_api_gateway_method.any) == 2 && alltrue([for m in aws_api_gateway_method.any : m.api_key_required && m.authorization == "CUSTOM" && m.authorizer_id == aws_api_gateway_authorizer.this.id])
    error_message = "every method requires an API key and our authorizer (the public docs below aside)"
  }
  assert {
    condition     = aws_api_gateway_rest_api.this.api_key_source == "AUTHORIZER"
    error_message = "the usage-plan key comes from the authorizer (either header works)"
  }
  assert {
    condition     = aws_api_gateway_authorizer.this.type == "REQUEST" && aws_api_gateway_authorizer.this.authorizer_result_ttl_in_seconds == 0
    error_message = "a REQUEST authorizer with cache TTL 0"
  }
  assert {
    condition     = aws_api_gateway_authorizer.this.authorizer_uri == aws_lambda_function.authorizer.invoke_arn && aws_lambda_function.authorizer.handler == "edge_api.authorizer.handler"
    error_message = "the authorizer runs edge_api.authorizer.handler from the same zip"
  }
  assert {
    condition     = alltrue([for i in aws_api_gateway_integration.any : i.type == "AWS_PROXY" && i.timeout_milliseconds == 29000])
    error_message = "proxy integrations to the Lambda with the budget's integration timeout"
  }
}

# A browser opening /prod/docs sends no key: the docs' own GETs pass without one, exactly those.
run "the_api_docs_are_public_and_only_they_are" {
  command = apply
  module {
    source = "../../modules/edge"
  }
  assert {
    condition     = keys(output.public_routes) == ["/docs", "/openapi.json", "/redoc", "/static-offline-docs/{proxy+}"]
    error_message = "exactly the docs pages, the schema they load and their assets are public"
  }
  assert {
    condition     = alltrue([for r in values(output.public_routes) : r.method == "GET" && r.authorization == "NONE" && !r.api_key_required && r.integration == "AWS_PROXY" && r.lambda])
    error_message = "public means GET only, no authorizer, no key, and the same Lambda proxy integration"
  }
  assert {
    condition     = alltrue([for k, r in aws_api_gateway_resource.docs : r.parent_id == aws_api_gateway_rest_api.this.root_resource_id && r.path_part == k]) && aws_api_gateway_resource.docs_assets.parent_id == aws_api_gateway_resource.docs["static-offline-docs"].id && aws_api_gateway_resource.docs_assets.path_part == "{proxy+}"
    error_message = "the routes sit at the stage root, as the app serves them (/prod/docs, /prod/static-offline-docs/...)"
  }
  assert {
    condition     = alltrue([for i in aws_api_gateway_integration.docs : i.timeout_milliseconds == 29000 && i.integration_http_method == "POST"])
    error_message = "the docs' integrations keep the budget's timeout"
  }
  assert {
    condition     = aws_api_gateway_method_settings.docs["static-offline-docs"].method_path == "static-offline-docs/{proxy+}/GET" && aws_api_gateway_method_settings.docs["docs"].method_path == "docs/GET" && alltrue([for m in aws_api_gateway_method_settings.docs : m.settings[0].throttling_rate_limit == 5 && !m.settings[0].data_trace_enabled])
    error_message = "no usage plan bounds the public methods: each has its own low throttle"
  }
}

run "usage_plans_throttle_and_the_web_app_has_its_own_low_quota" {
  command = apply
  module {
    source = "../../modules/edge"
  }
  assert {
    condition = length(aws_api_gateway_usage_plan.this) == 2 && alltrue([for p in aws_api_gateway_usage_plan.this :
    p.throttle_settings[0].rate_limit > 0 && p.throttle_settings[0].burst_limit > 0 && p.quota_settings[0].limit > 0])
    error_message = "both usage plans throttle and have a quota"
  }
  assert {
    condition     = aws_api_gateway_usage_plan.this["web-app"].quota_settings[0].limit < aws_api_gateway_usage_plan.this["clients"].quota_settings[0].limit
    error_message = "the web app's plan is the low one"
  }
  assert {
    condition     = length(aws_api_gateway_api_key.clients) == 2 && aws_api_gateway_usage_plan_key.web.usage_plan_id == aws_api_gateway_usage_plan.this["web-app"].id
    error_message = "one key per name in the clients' plan, the web key in its own plan"
  }
}

run "gateway_errors_have_the_openai_shape" {
  command = apply
  module {
    source = "../../modules/edge"
  }
  assert {
    condition = alltrue([for r in aws_api_gateway_gateway_response.openai :
      keys(jsondecode(replace(r.response_templates["application/json"], "$context.error.messageString", "\"Forbidden\"")).error) == ["code", "message", "param", "type"]
    ])
    error_message = "every gateway response is {error: {message, type, param, code}}"
  }
  assert {
    condition = alltrue([for t in ["UNAUTHORIZED", "INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED", "INTEGRATION_TIMEOUT", "DEFAULT_4XX", "DEFAULT_5XX"] :
    contains(keys(aws_api_gateway_gateway_response.openai), t)])
    error_message = "missing/invalid key, throttled, quota, timeout, default 4xx/5xx are rewritten"
  }
  assert {
    condition     = aws_api_gateway_gateway_response.openai["THROTTLED"].status_code == "429" && aws_api_gateway_gateway_response.openai["INTEGRATION_TIMEOUT"].status_code == "504"
    error_message = "throttling is 429 and timeouts 504"
  }
  assert {
    condition     = strcontains(aws_api_gateway_gateway_response.openai["INTEGRATION_TIMEOUT"].response_templates["application/json"], "$context.requestId")
    error_message = "a timeout carries the request id"
  }
  # Render as API Gateway does: $context.error.messageString becomes a quoted JSON string, the request
  # id bare text. Every body must then be JSON in the OpenAI shape.
  assert {
    condition = alltrue([for r in aws_api_gateway_gateway_response.openai : can(jsondecode(replace(replace(
      r.response_templates["application/json"], "$context.error.messageString", "\"Missing Authentication Token\""),
    "$context.requestId", "c0ffee00-1234-4abc-9def-0123456789ab")).error.type)])
    error_message = "every gateway response renders to valid JSON once API Gateway substitutes its variables"
  }
  assert {
    condition = jsondecode(replace(aws_api_gateway_gateway_response.openai["ACCESS_DENIED"].response_templates["application/json"],
    "$context.error.messageString", "\"Forbidden\"")).error.message == "Forbidden"
    error_message = "API Gateway's own message becomes the error message, quoted once"
  }
}

run "the_lambda_runs_in_the_vpc_with_nested_timeouts_and_no_keys_in_logs" {
  command = apply
  module {
    source = "../../modules/edge"
  }
  assert {
    condition     = length(aws_lambda_function.api.vpc_config[0].subnet_ids) == 2 && contains(aws_lambda_function.api.vpc_config[0].security_group_ids, aws_security_group.lambda.id)
    error_message = "the API Lambda runs in the private subnets with its own security group"
  }
  assert {
    condition     = aws_lambda_function.api.timeout == 28 && tonumber(nonsensitive(aws_lambda_function.api.environment[0].variables.WORKER_TIMEOUT_S)) == 27
    error_message = "the Lambda timeout and the edge's read timeout come from the budget"
  }
  assert {
    condition     = tonumber(nonsensitive(aws_lambda_function.api.environment[0].variables.MAX_BODY_BYTES)) + 262144 <= 6291456
    error_message = "MAX_BODY_BYTES leaves room for the event envelope inside Lambda's 6 MB payload"
  }
  assert {
    condition     = nonsensitive(aws_lambda_function.api.environment[0].variables.WORKER_SHARED_SECRET) == "test-shared-secret-value"
    error_message = "the edge gets the shared secret it sends to the workers"
  }
  assert {
    condition     = aws_lambda_function.api.reserved_concurrent_executions == -1 && coalesce(aws_lambda_function.authorizer.reserved_concurrent_executions, -1) == -1
    error_message = "no reserved concurrency (fails on new accounts, whose limit is 10)"
  }
  assert {
    condition     = aws_lambda_function.authorizer.role == "arn:aws:iam::123456789012:role/authorizer" && aws_lambda_function.api.role != aws_lambda_function.authorizer.role
    error_message = "the authorizer runs under its own role"
  }
  assert {
    condition = [for st in jsondecode(aws_iam_role_policy.authorizer.policy).Statement : st.Action] == [["logs:CreateLogStream", "logs:PutLogEvents"]] && alltrue([
    for st in jsondecode(aws_iam_role_policy.authorizer.policy).Statement : st.Resource == "${aws_cloudwatch_log_group.authorizer.arn}:*"])
    error_message = "the authorizer's role may write its own logs and nothing else"
  }
  assert {
    condition     = aws_vpc_security_group_egress_rule.lambda_to_endpoints.referenced_security_group_id == "sg-0eeeeeeeeeeeeeee5" && aws_vpc_security_group_egress_rule.lambda_to_dynamodb.prefix_list_id == "pl-0fedcba9876543210"
    error_message = "with NAT off the Lambda reaches SQS/SNS through the endpoints and DynamoDB through its gateway"
  }
  assert {
    condition     = aws_lambda_function.api.environment[0].variables.WORKER_URL == "http://internal-test.us-west-2.elb.amazonaws.com"
    error_message = "the Lambda calls the internal ALB"
  }
  assert {
    condition     = !strcontains(aws_api_gateway_stage.this.access_log_settings[0].format, "identity.apiKey\"") && strcontains(aws_api_gateway_stage.this.access_log_settings[0].format, "identity.apiKeyId")
    error_message = "access logs carry the key id, never the key"
  }
  assert {
    condition     = aws_api_gateway_method_settings.all.settings[0].data_trace_enabled == false
    error_message = "no full request logging (it would log keys)"
  }
  assert {
    condition = alltrue(flatten([for st in jsondecode(aws_iam_role_policy.lambda.policy).Statement : [
    for a in flatten([st.Action]) : !can(regex("^s3:(List|Delete)", a)) && a != "s3:*"]]))
    error_message = "the edge can neither list nor delete in the bucket"
  }
}

run "the_web_app_is_https_behind_a_login_and_only_its_alb_is_public" {
  command = apply
  module {
    source = "../../modules/web"
  }
  variables {
    certificate_arn       = "arn:aws:acm:us-west-2:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    domain_name           = "ocr.example.com"
    cognito_domain_prefix = "test-ocr"
    edge_url              = "https://mockapi.execute-api.us-west-2.amazonaws.com/prod"
    web_api_key_value     = "test-key-value"
    allowed_cidrs         = ["203.0.113.0/24"]
    release               = "2026-11-29-r1"
    ami_id                = "ami-0fedcba9876543210"
    internet_egress       = true
  }
  assert {
    condition     = aws_lb.this.internal == false && aws_lb_listener.https.protocol == "HTTPS"
    error_message = "an internet-facing ALB with HTTPS"
  }
  assert {
    condition     = [for a in aws_lb_listener.https.default_action : a.type] == ["authenticate-cognito", "forward"]
    error_message = "every request is authenticated by Cognito before it reaches the app"
  }
  assert {
    condition     = aws_lb_listener.http.default_action[0].type == "redirect" && aws_lb_listener.http.default_action[0].redirect[0].protocol == "HTTPS"
    error_message = "plain HTTP only redirects"
  }
  assert {
    condition     = toset([for r in aws_vpc_security_group_ingress_rule.alb_https : r.cidr_ipv4]) == toset(["203.0.113.0/24"])
    error_message = "the allowed-CIDR list limits who reaches the login"
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.instance_from_alb.referenced_security_group_id == aws_security_group.alb.id && aws_vpc_security_group_ingress_rule.instance_from_alb.cidr_ipv4 == null
    error_message = "the instance admits the web ALB only"
  }
  assert {
    condition     = aws_ssm_parameter.api_key.type == "SecureString" && aws_launch_template.this.metadata_options[0].http_tokens == "required"
    error_message = "the web app's key is a SecureString, IMDSv2 required"
  }
  assert {
    condition     = aws_cognito_user_pool.this.admin_create_user_config[0].allow_admin_create_user_only
    error_message = "no self sign-up"
  }
  assert {
    condition     = aws_launch_template.this.image_id == "ami-0fedcba9876543210" && aws_autoscaling_group.this.instance_refresh[0].strategy == "Rolling"
    error_message = "a pinned AMI, and a new release or AMI replaces the instance"
  }
}

run "alarms_cover_errors_latency_health_gpu_memory_and_lambda" {
  command = apply
  module {
    source = "../../modules/alarms"
  }
  variables {
    alarm_email                    = "ops@example.com"
    api_name                       = "test-api"
    stage_name                     = "prod"
    api_function_name              = "test-edge-api"
    worker_alb_arn_suffix          = "app/test/0123"
    worker_target_group_arn_suffix = "targetgroup/test/0123"
    worker_asg_name                = "test-workers"
  }
  assert {
    condition     = length(output.alarm_names) == 5 && aws_sns_topic_subscription.email[0].endpoint == "ops@example.com"
    error_message = "five alarms and an email subscription"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.api_p95_latency.extended_statistic == "p95"
    error_message = "latency alarm on p95"
  }
  assert {
    condition     = alltrue([for a in [aws_cloudwatch_metric_alarm.api_5xx_rate, aws_cloudwatch_metric_alarm.unhealthy_workers, aws_cloudwatch_metric_alarm.gpu_memory, aws_cloudwatch_metric_alarm.lambda_errors] : contains(a.alarm_actions, aws_sns_topic.this.arn)])
    error_message = "every alarm notifies the topic"
  }
  assert {
    condition     = aws_sns_topic.this.kms_master_key_id == aws_kms_key.alarms.arn && !startswith(aws_sns_topic.this.kms_master_key_id, "alias/aws/")
    error_message = "the topic uses the customer-managed key (CloudWatch cannot use alias/aws/sns)"
  }
  assert {
    condition = anytrue([for st in jsondecode(aws_kms_key.alarms.policy).Statement :
      st.Effect == "Allow" && try(st.Principal.Service, "") == "cloudwatch.amazonaws.com" && contains(flatten([st.Action]), "kms:Decrypt") && contains(flatten([st.Action]), "kms:GenerateDataKey*")
    ]) && aws_kms_key.alarms.enable_key_rotation
    error_message = "the key's policy lets CloudWatch encrypt for SNS; rotation on"
  }
}

run "the_web_app_refuses_to_boot_without_internet_egress" {
  command = plan
  module {
    source = "../../modules/web"
  }
  variables {
    certificate_arn       = "arn:aws:acm:us-west-2:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    domain_name           = "ocr.example.com"
    cognito_domain_prefix = "test-ocr"
    edge_url              = "https://mockapi.execute-api.us-west-2.amazonaws.com/prod"
    web_api_key_value     = "test-key-value"
    release               = "2026-11-29-r1"
    ami_id                = "ami-0fedcba9876543210"
    internet_egress       = false
  }
  expect_failures = [aws_launch_template.this]
}

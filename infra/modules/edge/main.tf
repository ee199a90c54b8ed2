locals {
  tags = merge(var.tags, { Module = "edge" })
  # Lambda's synchronous request payload limit is 6 MB and the whole API Gateway event counts, not
  # only the body: a body up to MAX_BODY_BYTES must still fit, so the edge's own 413 answers first.
  lambda_payload_limit_bytes = 6291456
  max_body_bytes             = local.lambda_payload_limit_bytes - var.event_envelope_bytes
  # $context.error.messageString arrives already quoted ("Forbidden"): it stands where a JSON string
  # stands, never inside one. The other variables are bare text inside our strings.
  quoted_variable = "$context.error.messageString"
  # API Gateway's own errors, rewritten to the OpenAI error shape the service uses everywhere.
  gateway_errors = {
    UNAUTHORIZED                   = { status = 401, type = "authentication_error", code = "missing_api_key", message = "Missing API key: send Authorization: Bearer KEY or x-api-key: KEY." }
    ACCESS_DENIED                  = { status = 403, type = "permission_error", code = "access_denied", message = null }
    INVALID_API_KEY                = { status = 403, type = "authentication_error", code = "invalid_api_key", message = "Invalid API key." }
    MISSING_AUTHENTICATION_TOKEN   = { status = 404, type = "not_found_error", code = "not_found", message = "Unknown route." }
    THROTTLED                      = { status = 429, type = "rate_limit_error", code = "throttled", message = "Too many requests: slow down and retry." }
    QUOTA_EXCEEDED                 = { status = 429, type = "rate_limit_error", code = "quota_exceeded", message = "This API key's quota is used up." }
    REQUEST_TOO_LARGE              = { status = 413, type = "invalid_request_error", code = "payload_too_large", message = "The request body is too large; upload large images with POST /v1/uploads." }
    INTEGRATION_TIMEOUT            = { status = 504, type = "timeout_error", code = "timeout", message = "The request timed out; request id $context.requestId (look it up later with GET /v1/results/$context.requestId)." }
    INTEGRATION_FAILURE            = { status = 502, type = "api_error", code = "upstream_unavailable", message = "The OCR service failed to answer; request id $context.requestId." }
    AUTHORIZER_FAILURE             = { status = 500, type = "server_error", code = "authorizer_failure", message = "The authorizer failed; request id $context.requestId." }
    AUTHORIZER_CONFIGURATION_ERROR = { status = 500, type = "server_error", code = "authorizer_failure", message = "The authorizer is misconfigured; request id $context.requestId." }
    DEFAULT_4XX                    = { status = null, type = "invalid_request_error", code = null, message = null }
    DEFAULT_5XX                    = { status = null, type = "api_error", code = null, message = "Internal error; request id $context.requestId." }
  }
  usage_plans = {
    clients   = { description = "API clients", limits = var.client_throttle }
    "web-app" = { description = "The web app's own key (low quota)", limits = var.web_throttle }
  }
  methods = {
    root  = aws_api_gateway_rest_api.this.root_resource_id
    proxy = aws_api_gateway_resource.proxy.id
  }
  # The API docs are public, as when the app runs on its own: a browser sends no key. GET only, on exactly
  # the paths fastapi-offline serves (the pages, the schema they load, their own JS/CSS); everything else,
  # /health included, still needs a key and the authorizer.
  docs_pages       = ["docs", "redoc", "openapi.json"]
  docs_assets_path = "static-offline-docs"
  public_methods = merge(
    { for page in local.docs_pages : page => aws_api_gateway_resource.docs[page].id },
    { (local.docs_assets_path) = aws_api_gateway_resource.docs_assets.id },
  )
}

resource "aws_api_gateway_rest_api" "this" {
  name           = "${var.name}-api"
  description    = "DeepSeek-OCR: OpenAI-compatible chat completions with page images"
  api_key_source = "AUTHORIZER" # the authorizer returns the key from either header as the usage key
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  lifecycle {
    create_before_destroy = true
  }
  tags = local.tags
}

resource "aws_api_gateway_resource" "proxy" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_authorizer" "this" {
  name                             = "${var.name}-keys"
  rest_api_id                      = aws_api_gateway_rest_api.this.id
  type                             = "REQUEST"
  authorizer_uri                   = aws_lambda_function.authorizer.invoke_arn
  authorizer_result_ttl_in_seconds = 0
  # No identity source: the key may come in Authorization or in x-api-key, so every request reaches
  # the authorizer (possible only with caching off), which refuses requests without either.
  identity_source = ""
}

resource "aws_api_gateway_method" "any" {
  for_each         = local.methods
  rest_api_id      = aws_api_gateway_rest_api.this.id
  resource_id      = each.value
  http_method      = "ANY"
  authorization    = "CUSTOM"
  authorizer_id    = aws_api_gateway_authorizer.this.id
  api_key_required = true
}

resource "aws_api_gateway_integration" "any" {
  for_each                = local.methods
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = each.value
  http_method             = aws_api_gateway_method.any[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = aws_lambda_function.api.invoke_arn
  timeout_milliseconds    = var.integration_timeout_ms
}

# ---- the public API docs -----------------------------------------------------------------------

resource "aws_api_gateway_resource" "docs" {
  for_each    = toset(concat(local.docs_pages, [local.docs_assets_path]))
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = each.value
}

resource "aws_api_gateway_resource" "docs_assets" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.docs[local.docs_assets_path].id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "docs" {
  #checkov:skip=CKV_AWS_59:the API docs (GET /docs, /redoc, /openapi.json and their assets) are public on purpose, as the app serves them; every other route needs a key
  for_each         = local.public_methods
  rest_api_id      = aws_api_gateway_rest_api.this.id
  resource_id      = each.value
  http_method      = "GET"
  authorization    = "NONE"
  api_key_required = false
}

resource "aws_api_gateway_integration" "docs" {
  for_each                = local.public_methods
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = each.value
  http_method             = aws_api_gateway_method.docs[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = aws_lambda_function.api.invoke_arn
  timeout_milliseconds    = var.integration_timeout_ms
}

resource "aws_api_gateway_gateway_response" "openai" {
  for_each      = local.gateway_errors
  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key
  status_code   = each.value.status == null ? null : tostring(each.value.status)
  response_templates = {
    # A null message means "API Gateway's own message": the placeholder string is swapped for the
    # already-quoted variable, so the body renders to valid JSON (tests render it).
    "application/json" = replace(jsonencode({
      error = {
        message = coalesce(each.value.message, "@message@")
        type    = each.value.type
        param   = null
        code    = each.value.code
      }
    }), "\"@message@\"", local.quoted_variable)
  }
  response_parameters = {
    "gatewayresponse.header.X-Request-ID" = "context.requestId"
  }
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.api.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/*/*"
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "AllowApiGatewayAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.authorizer.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/authorizers/${aws_api_gateway_authorizer.this.id}"
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  # Any change to the API's shape makes a new deployment.
  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.proxy,
      aws_api_gateway_authorizer.this,
      aws_api_gateway_method.any,
      aws_api_gateway_integration.any,
      aws_api_gateway_resource.docs,
      aws_api_gateway_resource.docs_assets,
      aws_api_gateway_method.docs,
      aws_api_gateway_integration.docs,
      aws_api_gateway_gateway_response.openai,
    ]))
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/ocr/${var.name}/api-access"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_api_gateway_stage" "this" {
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = false

  # Access logs carry the key's id, never the key or the Authorization header.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId   = "$context.requestId"
      ip          = "$context.identity.sourceIp"
      method      = "$context.httpMethod"
      path        = "$context.path"
      status      = "$context.status"
      latencyMs   = "$context.responseLatency"
      apiKeyId    = "$context.identity.apiKeyId"
      error       = "$context.error.responseType"
      integration = "$context.integration.status"
    })
  }

  depends_on = [aws_api_gateway_account.this]
  tags       = local.tags
}

resource "aws_api_gateway_method_settings" "all" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"
  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false # request bodies and headers (keys) never reach the logs
    throttling_rate_limit  = var.client_throttle.rate_limit * 10
    throttling_burst_limit = var.client_throttle.burst_limit * 10
  }
}

# The public docs get their own, lower throttle: no key means no usage plan to bound them.
resource "aws_api_gateway_method_settings" "docs" {
  for_each    = local.public_methods
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "${each.key == local.docs_assets_path ? "${local.docs_assets_path}/{proxy+}" : each.key}/GET"
  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    throttling_rate_limit  = var.docs_throttle.rate_limit
    throttling_burst_limit = var.docs_throttle.burst_limit
  }
  depends_on = [aws_api_gateway_method_settings.all]
}

# API Gateway writes access logs through one role per account and region.
resource "aws_iam_role" "api_logs" {
  name = "${var.name}-apigw-logs"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "apigateway.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "api_logs" {
  role       = aws_iam_role.api_logs.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  cloudwatch_role_arn = aws_iam_role.api_logs.arn
}

# Two plans: API clients, and the web app's own key with a low quota.
resource "aws_api_gateway_usage_plan" "this" {
  for_each    = local.usage_plans
  name        = "${var.name}-${each.key}"
  description = each.value.description
  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }
  throttle_settings {
    rate_limit  = each.value.limits.rate_limit
    burst_limit = each.value.limits.burst_limit
  }
  quota_settings {
    limit  = each.value.limits.quota_limit
    period = each.value.limits.quota_period
  }
  tags = local.tags
}

resource "aws_api_gateway_api_key" "clients" {
  for_each = toset(var.api_key_names)
  name     = "${var.name}-${each.value}"
  tags     = local.tags
}

resource "aws_api_gateway_usage_plan_key" "clients" {
  for_each      = aws_api_gateway_api_key.clients
  key_id        = each.value.id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this["clients"].id
}

resource "aws_api_gateway_api_key" "web" {
  name = "${var.name}-web-app"
  tags = local.tags
}

resource "aws_api_gateway_usage_plan_key" "web" {
  key_id        = aws_api_gateway_api_key.web.id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this["web-app"].id
}

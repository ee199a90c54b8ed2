output "api_url" {
  description = "Base URL for clients (the openai client's base_url): the stage URL plus /v1."
  value       = "${aws_api_gateway_stage.this.invoke_url}/v1"
}

output "base_url" {
  description = "The stage URL without /v1 (what the web app's EDGE_URL takes)."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "rest_api_name" {
  description = "REST API name (CloudWatch dimension ApiName)."
  value       = aws_api_gateway_rest_api.this.name
}

output "stage_name" {
  description = "Stage name."
  value       = aws_api_gateway_stage.this.stage_name
}

output "api_key_ids" {
  description = "API key ids by name (values: aws apigateway get-api-key --api-key ID --include-value)."
  value       = { for name, key in aws_api_gateway_api_key.clients : name => key.id }
}

output "web_api_key_id" {
  description = "Id of the web app's own API key."
  value       = aws_api_gateway_api_key.web.id
}

output "web_api_key_value" {
  description = "The web app's key value (stored in SSM for the web instance; never printed)."
  value       = aws_api_gateway_api_key.web.value
  sensitive   = true
}

output "lambda_security_group_id" {
  description = "Security group of the edge Lambda (allowed into the internal ALB)."
  value       = aws_security_group.lambda.id
}

output "api_function_name" {
  description = "Name of the API Lambda."
  value       = aws_lambda_function.api.function_name
}

output "log_group_names" {
  description = "Log groups of the edge."
  value       = [aws_cloudwatch_log_group.api.name, aws_cloudwatch_log_group.authorizer.name, aws_cloudwatch_log_group.access.name]
}

output "timeouts" {
  description = "The timeouts as set on the resources: integration (ms), Lambda (s), the edge's read timeout towards the worker (s)."
  value = {
    integration_ms = aws_api_gateway_integration.any["proxy"].timeout_milliseconds
    lambda_s       = aws_lambda_function.api.timeout
    edge_worker_s  = tonumber(nonsensitive(aws_lambda_function.api.environment[0].variables["WORKER_TIMEOUT_S"]))
  }
}

output "max_body_bytes" {
  description = "The edge's MAX_BODY_BYTES: Lambda's payload limit less the event envelope."
  value       = local.max_body_bytes
}

output "lambda_role_name" {
  description = "Name of the API Lambda's IAM role (the jobs module attaches its edge policy to it)."
  value       = aws_iam_role.lambda.name
}

output "lambda_policy" {
  description = "The API Lambda role's own inline policy (JSON); the jobs module adds its own next to it."
  value       = aws_iam_role_policy.lambda.policy
}

output "api_environment" {
  description = "The API Lambda's environment as set on the function, less the shared secret (tests read it)."
  value       = nonsensitive({ for k, v in aws_lambda_function.api.environment[0].variables : k => v if k != "WORKER_SHARED_SECRET" })
}

output "public_routes" {
  description = "The routes that need no key (the API docs): path => { method, authorization, api_key_required }."
  value = {
    for key, method in aws_api_gateway_method.docs : (key == local.docs_assets_path ? "/${local.docs_assets_path}/{proxy+}" : "/${key}") => {
      method           = method.http_method
      authorization    = method.authorization
      api_key_required = method.api_key_required
      integration      = aws_api_gateway_integration.docs[key].type
      lambda           = aws_api_gateway_integration.docs[key].uri == aws_lambda_function.api.invoke_arn
    }
  }
}

# ARN-shaped values where the provider validates ARNs and ids.
mock_data "aws_availability_zones" {
  defaults = { names = ["us-west-2a", "us-west-2b", "us-west-2c"] }
}
mock_data "aws_region" {
  defaults = { name = "us-west-2" }
}
mock_data "aws_ssm_parameter" {
  defaults = { value = "ami-0123456789abcdef0" }
}
mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
}
mock_resource "aws_iam_instance_profile" {
  defaults = { arn = "arn:aws:iam::123456789012:instance-profile/mock" }
}
mock_resource "aws_s3_bucket" {
  defaults = { arn = "arn:aws:s3:::mock-bucket" }
}
mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:us-west-2:123456789012:log-group:mock" }
}
mock_resource "aws_lambda_function" {
  defaults = {
    arn        = "arn:aws:lambda:us-west-2:123456789012:function:mock"
    invoke_arn = "arn:aws:apigateway:us-west-2:lambda:path/2015-03-31/functions/arn:aws:lambda:us-west-2:123456789012:function:mock/invocations"
  }
}
mock_resource "aws_api_gateway_rest_api" {
  defaults = {
    execution_arn    = "arn:aws:execute-api:us-west-2:123456789012:mockapi"
    root_resource_id = "rootid"
  }
}
mock_resource "aws_lb" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/mock/0123456789abcdef"
    arn_suffix = "app/mock/0123456789abcdef"
    dns_name   = "internal-mock.us-west-2.elb.amazonaws.com"
  }
}
mock_resource "aws_lb_target_group" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/mock/0123456789abcdef"
    arn_suffix = "targetgroup/mock/0123456789abcdef"
  }
}
mock_resource "aws_cognito_user_pool" {
  defaults = { arn = "arn:aws:cognito-idp:us-west-2:123456789012:userpool/us-west-2_mock" }
}
mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:us-west-2:123456789012:mock" }
}
mock_resource "aws_ssm_parameter" {
  defaults = { arn = "arn:aws:ssm:us-west-2:123456789012:parameter/mock" }
}
mock_resource "aws_launch_template" {
  defaults = { id = "lt-0123456789abcdef0", latest_version = 1 }
}
mock_resource "aws_api_gateway_stage" {
  defaults = { invoke_url = "https://mockapi.execute-api.us-west-2.amazonaws.com/prod" }
}
mock_data "aws_secretsmanager_random_password" {
  defaults = { random_password = "mockmockmockmockmockmockmockmockmockmockmockmock" }
}
mock_data "aws_caller_identity" {
  defaults = { account_id = "123456789012" }
}
mock_resource "aws_kms_key" {
  defaults = { arn = "arn:aws:kms:us-west-2:123456789012:key/00000000-0000-0000-0000-000000000000", key_id = "00000000-0000-0000-0000-000000000000" }
}
mock_resource "aws_autoscaling_policy" {
  defaults = { arn = "arn:aws:autoscaling:us-west-2:123456789012:scalingPolicy:0000:autoScalingGroupName/mock:policyName/mock" }
}

# Offline plan/apply against a mock AWS provider: nothing is created, the provider schema is real.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  bucket_name           = "test-ocr-results"
  source_archive_url    = "https://example.com/deepseek-ocr-service-0.1.0.tar.gz"
  lambda_zip_path       = "tests/fixtures/edge_lambda.zip"
  web_domain_name       = "ocr.example.com"
  web_certificate_arn   = "arn:aws:acm:us-west-2:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  cognito_domain_prefix = "test-ocr"
}

run "the_whole_environment_applies_offline" {
  command = apply

  assert {
    condition     = output.api_url == "https://mockapi.execute-api.us-west-2.amazonaws.com/prod/v1"
    error_message = "clients get the stage URL plus /v1, which is where the app's routes live"
  }
}

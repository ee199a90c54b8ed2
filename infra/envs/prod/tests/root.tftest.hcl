# Offline plan/apply of the whole environment against a mock AWS provider: nothing is created, the
# provider schema is real.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  bucket_name     = "test-ocr-results"
  release         = "2026-11-29-r1"
  worker_ami_id   = "ami-0123456789abcdef0"
  lambda_zip_path = "tests/fixtures/edge_lambda.zip"
  api_key_names   = ["team-a", "team-b"]
}

run "the_whole_environment_applies_offline_with_a_29_s_budget" {
  command = apply

  assert {
    condition     = output.api_url == "https://mockapi.execute-api.us-west-2.amazonaws.com/prod/v1"
    error_message = "clients get the stage URL plus /v1, which is where the app's routes live"
  }
  assert {
    condition     = output.timeouts.worker_request_s < output.timeouts.edge_worker_s && output.timeouts.edge_worker_s < output.timeouts.lambda_s && output.timeouts.lambda_s < output.timeouts.integration_s && output.timeouts.integration_s == 29
    error_message = "as set on the resources: worker < edge read < Lambda < integration = 29 s"
  }
  assert {
    condition     = output.web_url == null && output.release == "2026-11-29-r1"
    error_message = "the web app is opt-in (it needs the NAT, which is off by default)"
  }
}

run "the_timeouts_stay_nested_with_a_120_s_budget" {
  command = apply
  variables {
    timeout_budget_s = 120
  }
  assert {
    condition     = output.timeouts.worker_request_s < output.timeouts.edge_worker_s && output.timeouts.edge_worker_s < output.timeouts.lambda_s && output.timeouts.lambda_s < output.timeouts.integration_s && output.timeouts.integration_s == 120
    error_message = "as set on the resources: worker < edge read < Lambda < integration = 120 s"
  }
}

run "the_web_app_applies_with_the_nat" {
  command = apply
  variables {
    enable_web            = true
    enable_nat            = true
    web_ami_id            = "ami-0fedcba9876543210"
    web_domain_name       = "ocr.example.com"
    web_certificate_arn   = "arn:aws:acm:us-west-2:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    cognito_domain_prefix = "test-ocr"
  }
  assert {
    condition     = output.web_url == "https://ocr.example.com"
    error_message = "the web app comes up at its domain"
  }
}

run "the_web_app_without_its_ami_is_refused" {
  command = plan
  variables {
    enable_web = true
    enable_nat = true
  }
  expect_failures = [var.web_ami_id, var.web_domain_name, var.web_certificate_arn, var.cognito_domain_prefix]
}

run "a_private_network_without_the_jobs_endpoints_is_refused" {
  command = plan
  variables {
    interface_endpoints = ["ssm", "logs", "monitoring"]
  }
  expect_failures = [var.interface_endpoints]
}

run "with_the_nat_fewer_endpoints_are_fine" {
  command = plan
  variables {
    enable_nat          = true
    interface_endpoints = ["ssm"]
  }
}

# The edge -> worker shared secret (header x-worker-secret): generated here, kept as a SecureString,
# given to the edge Lambda as WORKER_SHARED_SECRET and read by each worker from SSM at boot.
# (The hashicorp/random provider is not vendored here; Secrets Manager's generator needs no extra
# provider. It answers anew on every plan, so the parameter keeps its first value: rotate with
# `terraform apply -replace=module.worker_fleet.aws_ssm_parameter.shared_secret`, which also rolls the fleet.)
data "aws_secretsmanager_random_password" "shared_secret" {
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_ssm_parameter" "shared_secret" {
  name        = "/ocr/${var.name}/worker-shared-secret"
  description = "Shared secret the edge sends to the workers (x-worker-secret)"
  type        = "SecureString"
  value       = data.aws_secretsmanager_random_password.shared_secret.random_password
  tags        = local.tags

  lifecycle {
    ignore_changes = [value]
  }
}

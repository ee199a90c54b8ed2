locals {
  tags = { Project = "deepseek-ocr-service", Environment = "prod", ManagedBy = "terraform", Release = var.release }
}

# One budget, every nested timeout derived from it (worker < edge read < Lambda < integration).
module "timeouts" {
  source   = "../../modules/timeouts"
  budget_s = var.timeout_budget_s
}

module "network" {
  source              = "../../modules/network"
  name                = var.name
  enable_nat          = var.enable_nat
  interface_endpoints = var.interface_endpoints
  tags                = local.tags
}

module "results_bucket" {
  source              = "../../modules/results_bucket"
  bucket_name         = var.bucket_name
  results_expire_days = var.results_expire_days
  uploads_expire_days = var.uploads_expire_days
  tags                = local.tags
}

module "worker_fleet" {
  source                         = "../../modules/worker_fleet"
  name                           = var.name
  vpc_id                         = module.network.vpc_id
  private_subnet_ids             = module.network.private_subnet_ids
  s3_prefix_list_id              = module.network.s3_prefix_list_id
  dynamodb_prefix_list_id        = module.network.dynamodb_prefix_list_id
  endpoint_security_group_id     = module.network.endpoint_security_group_id
  internet_egress                = module.network.nat_enabled
  alb_ingress_security_group_ids = { edge_lambda = module.edge.lambda_security_group_id }
  bucket_name                    = module.results_bucket.bucket
  bucket_arn                     = module.results_bucket.arn
  release                        = var.release
  instance_type                  = var.worker_instance_type
  ami_id                         = var.worker_ami_id
  min_size                       = var.worker_min
  max_size                       = var.worker_max
  request_timeout_s              = module.timeouts.worker_request_timeout_s
  worker_env                     = module.jobs.worker_env # JOBS_* into the env file the boot writes
  deletion_protection            = var.deletion_protection
  tags                           = local.tags
}

module "edge" {
  source                       = "../../modules/edge"
  name                         = var.name
  vpc_id                       = module.network.vpc_id
  private_subnet_ids           = module.network.private_subnet_ids
  s3_prefix_list_id            = module.network.s3_prefix_list_id
  dynamodb_prefix_list_id      = module.network.dynamodb_prefix_list_id
  endpoint_security_group_id   = module.network.endpoint_security_group_id
  worker_alb_security_group_id = module.worker_fleet.alb_security_group_id
  worker_url                   = module.worker_fleet.worker_url
  worker_shared_secret         = module.worker_fleet.shared_secret_value
  lambda_zip_path              = var.lambda_zip_path
  api_handler                  = var.api_handler
  authorizer_handler           = var.authorizer_handler
  bucket_name                  = module.results_bucket.bucket
  bucket_arn                   = module.results_bucket.arn
  integration_timeout_ms       = module.timeouts.integration_timeout_ms
  lambda_timeout_s             = module.timeouts.lambda_timeout_s
  worker_timeout_s             = module.timeouts.edge_worker_timeout_s
  api_key_names                = var.api_key_names
  edge_env                     = module.jobs.edge_env # JOBS_TABLE, JOBS_QUEUE_URL: /v1/jobs and /v1/usage
  tags                         = local.tags
}

module "web" {
  source                = "../../modules/web"
  count                 = var.enable_web ? 1 : 0
  name                  = var.name
  vpc_id                = module.network.vpc_id
  public_subnet_ids     = module.network.public_subnet_ids
  private_subnet_ids    = module.network.private_subnet_ids
  internet_egress       = module.network.nat_enabled
  certificate_arn       = var.web_certificate_arn
  domain_name           = var.web_domain_name
  allowed_cidrs         = var.web_allowed_cidrs
  cognito_domain_prefix = var.cognito_domain_prefix
  edge_url              = module.edge.base_url
  web_api_key_value     = module.edge.web_api_key_value
  release               = var.release
  bucket_name           = module.results_bucket.bucket
  bucket_arn            = module.results_bucket.arn
  ami_id                = var.web_ami_id
  deletion_protection   = var.deletion_protection
  tags                  = local.tags
}

module "alarms" {
  source                         = "../../modules/alarms"
  name                           = var.name
  alarm_email                    = var.alarm_email
  api_name                       = module.edge.rest_api_name
  stage_name                     = module.edge.stage_name
  api_function_name              = module.edge.api_function_name
  worker_alb_arn_suffix          = module.worker_fleet.alb_arn_suffix
  worker_target_group_arn_suffix = module.worker_fleet.target_group_arn_suffix
  worker_asg_name                = module.worker_fleet.asg_name
  tags                           = local.tags
}

# Documents as jobs: queue + DLQ, job records, completion events, IAM for the edge and workers, and the
# fleet scaling on the backlog. Its settings go into the edge's and the workers' environments above; its
# policies onto their roles (no cycle: each side needs only the other's role name or resource names).
module "jobs" {
  source           = "../../modules/jobs"
  name             = var.name
  bucket_arn       = module.results_bucket.arn
  edge_role_name   = module.edge.lambda_role_name
  worker_role_name = module.worker_fleet.instance_role_name
  worker_asg_name  = module.worker_fleet.asg_name
  alarm_actions    = [module.alarms.topic_arn]
  tags             = local.tags
}

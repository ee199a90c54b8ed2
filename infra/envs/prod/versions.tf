terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
  # Remote state: configure an S3 backend here (or with -backend-config) before the first apply.
}

provider "aws" {
  region = var.region
  default_tags {
    tags = local.tags
  }
}

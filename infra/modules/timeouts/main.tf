# Every layer answers before the one outside it gives up: worker < edge read < Lambda < integration.
# Fixed margins (not fractions) keep the nesting strict for every whole budget from 10 s to 300 s.
locals {
  integration_timeout_ms = var.budget_s * 1000
  lambda_timeout_s       = var.budget_s - 1 # Lambda takes whole seconds
  edge_worker_timeout_s  = var.budget_s - 2 # the edge's read timeout towards the worker
  worker_request_s       = var.budget_s - 4 # the worker stops waiting and answers 504 itself
}

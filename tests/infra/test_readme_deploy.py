"""The README's deploy section runs as written: its jq filters work on what `terraform output -json`
gives with the example tfvars, and the outputs, variables and script flags it names exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import hcl2
import pytest

from scripts.stage_artifacts import parser
from tests.infra.test_hcl import INFRA, parse

ROOT = INFRA.parent
PROD = INFRA / "envs" / "prod"


def deploy_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Deploy on AWS")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def example_tfvars() -> dict:
    with (PROD / "terraform.tfvars.example").open() as handle:
        loaded = hcl2.load(handle).items()
    return {k: v.strip('"') if isinstance(v, str) else v for k, v in loaded if not k.startswith("__")}


def test_the_jq_filters_work_with_the_example_tfvars():
    if not shutil.which("jq"):
        pytest.skip("jq is not installed")
    names = [n.strip('"') for n in example_tfvars()["api_key_names"]]
    output = json.dumps({name: f"id-{name}" for name in names})  # terraform output -json api_key_ids
    filters = re.findall(r"jq -r '([^']+)'", deploy_section())
    assert filters
    for expression in filters:
        result = subprocess.run(["jq", "-r", expression], input=output, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip().startswith("id-"), (expression, result)


def test_the_outputs_the_readme_reads_exist():
    outputs = {name for block in parse(PROD)["output"] for name in block}
    used = set(re.findall(r"terraform output (?:-raw |-json )?([a-z_]+)", deploy_section()))
    assert used and used <= outputs, used - outputs


def test_the_stage_command_uses_only_real_flags():
    flags = {a for action in parser()._actions for a in action.option_strings}
    section = deploy_section()
    command = section[section.index("scripts/stage_artifacts.py --bucket") :].split("\n.venv")[0]
    used = set(re.findall(r"(--[a-z-]+)", command))
    assert used and used <= flags, used - flags


def test_the_example_tfvars_set_only_declared_variables_and_every_required_one():
    declared = {n: b for block in parse(PROD)["variable"] for n, b in block.items()}
    given = example_tfvars()
    assert set(given) <= set(declared)
    required = {n for n, b in declared.items() if "default" not in b}
    assert required <= set(given) | {"lambda_zip_path"}, required - set(given)

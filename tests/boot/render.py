"""Terraform's templatefile() for the subset the boot templates use: ${name} and the $${ escape.

Directives (%{ ... }) are refused, so a template cannot grow a construct this renderer would get
wrong; test_render_matches_terraform checks the result against Terraform itself where it is installed.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOT = ROOT / "infra" / "boot"
TOKEN = re.compile(r"\$\$\{|%%\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|%\{|\$\{")


def render(template: Path, variables: dict[str, str]) -> str:
    """The template with every ${name} replaced by its value, as templatefile() would."""
    text = template.read_text()
    used: set[str] = set()

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        if token == "%%{":
            return "%{"
        name = match.group(1)
        if name is None:
            raise ValueError(f"{template.name}: unsupported template construct at {match.start()}: {token!r}")
        if name not in variables:
            raise KeyError(f"{template.name}: no value for ${{{name}}}")
        used.add(name)
        return variables[name]

    rendered = TOKEN.sub(substitute, text)
    unused = set(variables) - used
    if unused:
        raise KeyError(f"{template.name}: values never used: {sorted(unused)}")
    return rendered


def worker_variables(**values: str) -> dict[str, str]:
    """The worker template's inputs as infra/modules/worker_fleet/main.tf passes them, with files read."""
    return {
        "fetch_script": (BOOT / "fetch_release.py").read_text(),
        "service_unit": (BOOT / "ocr-worker.service.in").read_text(),
        "health_check": (BOOT / "health_check.sh").read_text(),
        "agent_config": render(BOOT / "cloudwatch-agent.json.tftpl", {"log_group": "/ocr/test/worker"}),
        **values,
    }

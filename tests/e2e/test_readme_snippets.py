"""Every Python snippet in the README runs as pasted against the real edge, worker and local S3 API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"^```python\n(.*?)^```", README, re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.integration


def snippet_id(code: str) -> str:
    """The section the snippet sits in, so a failure names the place in the README."""
    heading = re.findall(r"^## (.+)$", README[: README.index(code)], re.MULTILINE)
    return (heading[-1] if heading else "top").lower().replace(" ", "-")


def test_the_readme_has_its_snippets():
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"{i}-{snippet_id(c)}" for i, c in enumerate(SNIPPETS)])
def test_readme_snippet_runs_as_pasted(code, edge_server, edge_keys):
    env = {**os.environ, "OCR_API": edge_server.url + "/v1", "OCR_API_KEY": edge_keys[0]}
    # A fresh interpreter in the repo's root, the way a reader pastes it: nothing is defined beforehand.
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=180)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Total due: 176.40 EUR" in out.stdout, out.stdout

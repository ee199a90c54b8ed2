"""One local stack per test session (the code behind `scripts/run_local.sh`), and headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.local_stack import LocalStack, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / ".local-stack" / "e2e"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (scripts/test.sh installs Debian's chromium)")
    stack = LocalStack(worker_port=free_port(), edge_port=free_port(), web_port=free_port(), engine="rapidocr",
                       log_dir=tmp_path_factory.mktemp("stack-logs"))  # fmt: skip
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, stack):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(stack.urls["web"] + "/")
    page.wait_for_selector("#submit")
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

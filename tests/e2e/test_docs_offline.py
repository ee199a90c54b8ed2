"""The edge's /docs and /redoc render in Chromium with every other host unreachable (the local stack's edge)."""

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e
# ReDoc's sidebar asks its CDN for a small logo and hides it when that fails; nothing else may leave.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
def offline(browser, stack):
    """A page that can reach only 127.0.0.1, and the requests it tried to send elsewhere."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def gate(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", gate)
    page = context.new_page()
    yield page, elsewhere
    context.close()


def test_swagger_ui_renders_offline(offline, stack):
    page, elsewhere = offline
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(stack.urls["edge"] + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() >= 5
    assert page.locator(".swagger-ui .opblock-summary-path", has_text="/v1/chat/completions").count() == 1
    assert elsewhere == [] and failed == []


def test_redoc_renders_offline(offline, stack):
    page, elsewhere = offline
    page.goto(stack.urls["edge"] + "/redoc")
    page.wait_for_selector(".api-content [data-section-id^='operation']", timeout=30_000)
    assert page.locator(".api-content [data-section-id^='operation']").count() >= 5
    assert page.get_by_text("/v1/chat/completions").count() >= 1
    assert set(elsewhere) <= {REDOC_LOGO}

"""The web app in headless Chromium against the whole local stack (RapidOCR engine, local S3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.utils.documents import render_document

pytestmark = pytest.mark.e2e
LINES = ["Browser test document", "Total amount due 42"]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "invoice.png"


def choose(page, trigger: str, option: str) -> None:
    page.click(trigger)
    page.get_by_role("option", name=option).click()


def upload(page, path: Path, *, image: bool = True) -> None:
    """Drop a file; for an image, wait until the backend holds it (the upload is asynchronous)."""
    page.set_input_files("#page input[type=file]", str(path))
    if image:
        label = f"document.querySelector('#file-label')?.innerText.includes({path.name!r})"
        page.wait_for_function(f"Boolean({label})")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_ocr_shows_the_recognised_text(page, tmp_path, artifacts):
    upload(page, write(tmp_path, "doc.png", render_document(LINES).png()))
    choose(page, "#task-select", "Plain text")
    page.click("#submit")
    page.wait_for_selector("#result-text", timeout=60_000)
    text = page.inner_text("#result-text")
    for line in LINES:
        assert line in text
    assert page.is_enabled("#submit")
    page.screenshot(path=str(artifacts / "ocr-result.png"), full_page=True)


def test_the_sample_invoice_as_markdown(page, artifacts):
    upload(page, SAMPLE)
    page.click("#submit")
    page.wait_for_selector("#annotated", timeout=60_000)
    page.wait_for_function("document.querySelector('#annotated').naturalWidth > 0")
    assert "Total due: 176.40 EUR" in page.inner_text("#result-text")
    assert page.locator("#boxes tbody tr").count() >= 9
    page.screenshot(path=str(artifacts / "invoice-markdown.png"), full_page=True)


def test_phone_width_keeps_everything_usable(browser, stack, artifacts):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(stack.urls["web"] + "/")
    upload(page, SAMPLE)
    page.click("#submit")
    page.wait_for_selector("#result-text", timeout=60_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scrolling
    page.screenshot(path=str(artifacts / "phone.png"), full_page=True)
    context.close()


def test_locate_shows_the_annotated_image_and_the_box(page, tmp_path, artifacts):
    upload(page, write(tmp_path, "doc.png", render_document(LINES).png()))
    choose(page, "#task-select", "Locate a text (boxes)")
    page.fill("#ref-text", "total amount")
    page.click("#submit")
    page.wait_for_selector("#annotated", timeout=60_000)
    page.wait_for_function("document.querySelector('#annotated').naturalWidth > 0")
    rows = page.locator("#boxes tbody tr")
    assert rows.count() == 1
    assert "total amount" in rows.first.inner_text()
    page.screenshot(path=str(artifacts / "locate-result.png"), full_page=True)


def test_a_non_image_gives_a_clear_error(page, tmp_path):
    upload(page, write(tmp_path, "notes.txt", b"just some text"), image=False)
    page.wait_for_selector("#error")
    assert "notes.txt is not a PNG, JPEG or WebP image" in page.inner_text("#error")
    assert page.locator("#file-label").count() == 0
    upload(page, write(tmp_path, "fake.png", b"this is not really a png"), image=False)
    page.wait_for_function("document.querySelector('#error').innerText.includes('fake.png is not a PNG')")
    page.click("#submit")
    page.wait_for_function("document.querySelector('#error').innerText.includes('Choose a page image first')")


def test_markup_in_the_recognised_text_runs_no_script(page, tmp_path):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    doc = render_document(["<img src=x onerror=alert(1)>", "<b onmouseover=alert(2)>hover</b>"], width=1100,
                          font_size=40)  # fmt: skip
    upload(page, write(tmp_path, "xss.png", doc.png()))
    choose(page, "#task-select", "Plain text")
    page.click("#submit")
    page.wait_for_selector("#result-text", timeout=60_000)
    page.wait_for_timeout(500)
    assert page.locator("#result-text img").count() == 0
    assert page.locator("#result-text [onerror], #result-text [onmouseover]").count() == 0
    page.hover("#result-text")
    assert dialogs == []
    raw_toggle = page.locator("#toggle-raw")
    raw_toggle.click()
    assert "onerror" in page.inner_text("#raw-text")  # the markup was read, shown as text only


def test_worker_stopped_gives_a_clear_error(page, tmp_path, stack):
    stack.stop_service("worker")
    try:
        upload(page, write(tmp_path, "doc.png", render_document(LINES).png()))
        page.click("#submit")
        page.wait_for_selector("#error", timeout=60_000)
        assert "not available" in page.inner_text("#error")
        assert "Traceback" not in page.content()
    finally:
        stack.start_service("worker")

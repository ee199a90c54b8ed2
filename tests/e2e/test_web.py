"""The web app in headless Chromium against the whole local stack (RapidOCR engine, local S3): reading,
honesty about the engine, and failures in words."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import LINES, SAMPLE, choose, read, upload, write
from tests.utils.documents import render_document

pytestmark = pytest.mark.e2e


def test_the_page_says_which_engine_serves_and_what_it_cannot_do(page, artifacts):
    page.wait_for_selector("#engine-note")
    assert page.inner_text("#engine-name") == "RapidOCR (CPU)"
    note = page.inner_text("#engine-note")
    assert "not DeepSeek-OCR" in note and "no GPU" in note and "describe the image" in note
    page.click("#task-select")
    describe = page.get_by_role("option", name="Describe the image: needs DeepSeek-OCR (GPU)")
    assert describe.get_attribute("aria-disabled") == "true"
    assert (
        page.get_by_role("option", name="Custom prompt: needs DeepSeek-OCR (GPU)").get_attribute(
            "aria-disabled"
        )
        == "true"
    )
    assert page.get_by_role("option", name="Plain text").get_attribute("aria-disabled") != "true"
    page.keyboard.press("Escape")
    # Presets change nothing on this engine: the select is off and says why; labels are ceilings.
    assert page.is_disabled("#mode-select")
    assert "presets change nothing" in page.inner_text("#mode-select-note")
    assert "gundam: up to 1121 tokens" in page.inner_text("#mode-select")
    page.screenshot(path=str(artifacts / "engine-note.png"), full_page=True)


def test_plain_text_keeps_its_lines_and_progress_shows_while_reading(page, tmp_path):
    upload(page, write(tmp_path, "doc.png", render_document(LINES).png()))
    choose(page, "#task-select", "Plain text")
    page.click("#submit")
    page.wait_for_selector("#elapsed")  # "Reading for N s" while the request runs
    page.wait_for_selector("#result-text", timeout=60_000)
    assert page.inner_text("#result-text").splitlines() == LINES
    assert "Vision tokens" in page.inner_text("#tokens")
    page.wait_for_function("!document.querySelector('#submit').disabled")


def test_a_new_file_clears_the_previous_result_and_shows_a_preview(page, tmp_path):
    upload(page, SAMPLE)
    page.wait_for_selector("#preview")
    read(page)
    upload(page, write(tmp_path, "second.png", render_document(LINES).png()))
    assert page.locator("#result-text").count() == 0
    assert "The result shows here" in page.inner_text("#result")
    page.wait_for_function("document.querySelector('#preview')?.naturalWidth === 900")


def test_locate_has_a_labelled_field_and_says_not_found(page, tmp_path):
    upload(page, write(tmp_path, "doc.png", render_document(LINES).png()))
    choose(page, "#task-select", "Locate a text (boxes)")
    page.get_by_label("Text to locate").fill("total amount")
    read(page)
    rows = page.locator("#boxes tbody tr")
    assert rows.count() == 1 and "total amount" in rows.first.inner_text()
    assert page.locator("#not-found").count() == 0
    page.get_by_label("Text to locate").fill("zebra crossing")
    read(page, result=False)
    page.wait_for_selector("#not-found")
    assert "“zebra crossing” was not found" in page.inner_text("#not-found")
    assert page.locator("#boxes").count() == 0


def test_a_non_image_gives_a_clear_error(page, tmp_path):
    upload(page, write(tmp_path, "notes.txt", b"just some text"), accepted=False)
    page.wait_for_selector("#error")
    assert "notes.txt is not a PNG, JPEG or WebP image, or a PDF" in page.inner_text("#error")
    assert page.locator("#file-label").count() == 0
    upload(page, write(tmp_path, "fake.png", b"this is not really a png"), accepted=False)
    page.wait_for_function("document.querySelector('#error').innerText.includes('fake.png is not a PNG')")
    page.click("#submit")
    page.wait_for_function(
        "document.querySelector('#error').innerText.includes('Choose a page image or a PDF first')"
    )


def test_markup_in_the_recognised_text_runs_no_script(page, tmp_path):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    doc = render_document(["<img src=x onerror=alert(1)>", "<b onmouseover=alert(2)>hover</b>"], width=1100,
                          font_size=40)  # fmt: skip
    upload(page, write(tmp_path, "xss.png", doc.png()))
    read(page)  # markdown: rendered through the sanitiser
    page.wait_for_timeout(500)
    assert page.locator("#result-text img").count() == 0
    assert page.locator("#result-text [onerror], #result-text [onmouseover]").count() == 0
    page.hover("#result-text")
    assert dialogs == []
    page.click("#toggle-raw")
    assert "onerror" in page.inner_text("#raw-text")  # the markup was read, shown as text only


def test_phone_width_keeps_everything_usable_and_scrolls_to_the_result(browser, stack, artifacts):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(stack.urls["web"] + "/")
    page.wait_for_selector("#engine-note")
    upload(page, SAMPLE)
    read(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scrolling
    page.wait_for_function("window.scrollY > 300")  # brought down to the result, below the form
    top = page.evaluate("document.getElementById('result').getBoundingClientRect().top")
    assert -5 <= top < 844
    page.screenshot(path=str(artifacts / "phone.png"), full_page=True)
    context.close()


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

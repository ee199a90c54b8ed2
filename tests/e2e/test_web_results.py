"""Results in Chromium: boxes linked to their rows, downloads built by the backend, history across reloads
and tabs, and a batch of files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.helpers import LINES, SAMPLE, choose, read, upload, write
from tests.utils.documents import render_document

pytestmark = pytest.mark.e2e


@pytest.fixture
def invoice_result(page):
    upload(page, SAMPLE)
    page.wait_for_selector("#preview")
    read(page)
    page.wait_for_function("document.querySelector('#page-image')?.naturalWidth > 0")
    return page


def active_boxes(page) -> list[str]:
    return page.eval_on_selector_all(".page-box.active", "boxes => boxes.map(b => b.id)")


def test_boxes_and_rows_highlight_each_other(invoice_result, artifacts):
    page = invoice_result
    assert page.locator("#boxes tbody tr").count() >= 9
    assert page.locator(".page-box").count() == page.locator("#boxes tbody tr").count()
    page.hover("#row-2")
    page.wait_for_function("document.querySelector('#box-2').classList.contains('active')")
    assert active_boxes(page) == ["box-2"]
    assert page.inner_text("#active-caption").startswith("Box 3: text")
    page.hover("#box-4")
    page.wait_for_function(
        "getComputedStyle(document.querySelector('#row-4')).backgroundColor !== 'rgba(0, 0, 0, 0)'"
    )
    assert active_boxes(page) == ["box-4"]
    page.focus("#row-0")  # keyboard users get the same link
    page.wait_for_function("document.querySelector('#box-0').classList.contains('active')")
    # The outline sits where the box is: its left edge in percent of the page matches the pixel box.
    # Each box carries the text read inside it (the invoice's first line is its heading).
    assert page.locator("#boxes th").all_inner_texts() == ["#", "Label", "Text", "Box [x1, y1, x2, y2] px"]
    assert "INVOICE 2026-0142" in page.inner_text("#row-0 td:nth-child(3)")
    x1 = int(page.inner_text("#row-0 td:nth-child(4)").split(",")[0])
    width = page.evaluate("document.querySelector('#page-image').naturalWidth")
    left = page.evaluate(
        "document.querySelector('#box-0').offsetLeft / document.querySelector('#page-image').clientWidth"
    )
    assert abs(100 * left - 100 * x1 / width) < 0.5
    page.screenshot(path=str(artifacts / "boxes-linked.png"), full_page=True)


def test_every_download_has_the_right_content(invoice_result, stack):
    page = invoice_result

    def download(kind: str) -> tuple[str, bytes]:
        with page.expect_download() as info:
            page.click(f"#dl-{kind}")
        return info.value.suggested_filename, Path(info.value.path()).read_bytes()

    name, md = download("md")
    assert name == "invoice.md" and "Total due: 176.40 EUR" in md.decode()
    name, txt = download("txt")
    assert name == "invoice.txt" and "Total due: 176.40 EUR" in txt.decode()
    name, raw = download("json")
    body = json.loads(raw)
    assert name == "invoice.json" and body["ocr"]["request_id"] == page.inner_text("#meta").rsplit(" ", 1)[-1]
    name, png = download("image")
    assert name == "invoice-annotated.png"
    assert Image.open(io.BytesIO(png)).size == Image.open(SAMPLE).size
    name, archive = download("zip")
    files = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert name == "invoice.zip"
    assert set(files) == {"invoice.md", "invoice.txt", "invoice.json", "annotated/invoice-page-0001.png"}
    # The key never reaches the browser.
    assert stack.api_key not in page.content()


def test_history_survives_a_reload_and_a_new_tab_and_reopens_with_fresh_links(page, tmp_path):
    upload(page, write(tmp_path, "history-page.png", render_document(LINES).png()))
    choose(page, "#task-select", "Plain text")
    read(page)
    request_id = page.inner_text("#meta").rsplit(" ", 1)[-1]
    page.reload()
    page.wait_for_selector("#history")
    assert "history-page.png" in page.inner_text("#history .history-entry >> nth=0")
    tab = page.context.new_page()  # another tab of the same browser
    tab.goto(page.url)
    tab.wait_for_selector("#history")
    tab.click("#history .history-open >> nth=0")
    tab.wait_for_selector("#result-text", timeout=60_000)
    assert tab.inner_text("#result-text").splitlines() == LINES
    assert tab.inner_text("#meta").endswith(request_id)
    with tab.expect_download() as info:
        tab.click("#dl-md")  # the backend fetched the result again, with links signed just now
    assert Path(info.value.path()).read_text().splitlines() == LINES
    tab.close()


def test_a_batch_of_three_files_shows_each_state_and_opens_any(page, tmp_path, artifacts):
    files = [
        write(tmp_path, f"batch-{i}.png", render_document([f"Batch page number {i}"]).png()) for i in (1, 2)
    ]
    files.append(write(tmp_path, "batch-3.txt", b"not a page"))
    page.set_input_files("#page input[type=file]", [str(p) for p in files])
    page.wait_for_function("document.querySelectorAll('#batch .batch-item').length === 2")
    assert "batch-3.txt is not a PNG" in page.inner_text("#error")
    choose(page, "#task-select", "Plain text")
    read(page)
    statuses = page.locator("#batch .item-status").all_inner_texts()
    assert statuses == ["done", "done"]
    assert page.inner_text("#result-name") == "batch-1.png"
    page.click("#batch .item-open >> nth=1")
    page.wait_for_function("document.querySelector('#result-name').innerText === 'batch-2.png'")
    assert page.inner_text("#result-text").strip() == "Batch page number 2"
    page.screenshot(path=str(artifacts / "batch.png"), full_page=True)

"""PDFs in Chromium: a short one read inline page by page, a long one as a job with a moving progress bar."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import pytest

from tests.e2e.helpers import choose, read, upload, write
from tests.utils.pdfs import text_document

pytestmark = pytest.mark.e2e


def page_text(page, number: int) -> str:
    page.click(f"#page-nav button[aria-label='Page {number}']")
    page.wait_for_function(
        f"document.querySelector('#result-text')?.innerText.includes('Page {number} report')", timeout=10_000
    )
    return page.inner_text("#result-text")


def test_a_three_page_pdf_is_read_inline_page_by_page(page, tmp_path):
    data, texts = text_document(3)
    upload(page, write(tmp_path, "three.pdf", data))
    choose(page, "#task-select", "Plain text")
    read(page)
    assert page.locator("#page-nav .page-button").count() == 3
    assert page.locator("#batch .item-progress").count() == 0  # inline: no job
    for number in (1, 2, 3):
        assert page_text(page, number).splitlines() == texts[number - 1]
    with page.expect_download() as info:
        page.click("#dl-zip")
    names = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())).namelist()
    assert {"three.md", "three.txt", "three.json"} <= set(names)
    assert sorted(n for n in names if n.startswith("annotated/")) == [
        f"annotated/three-page-{n:04d}.png" for n in (1, 2, 3)
    ]


def test_a_twelve_page_pdf_runs_as_a_job_with_a_moving_progress_bar(page, tmp_path, artifacts):
    data, texts = text_document(12)
    upload(page, write(tmp_path, "twelve.pdf", data))
    choose(page, "#task-select", "Plain text")
    runs = int(page.get_attribute("#result", "data-runs") or 0)
    page.click("#submit")
    page.wait_for_selector("#batch .item-progress", timeout=120_000)
    seen: set[int] = set()
    shot = ""
    deadline = time.monotonic() + 300
    while int(page.get_attribute("#result", "data-runs") or 0) == runs:
        assert time.monotonic() < deadline, f"the job did not finish in 300 s; pages seen {sorted(seen)}"
        # The progress row leaves the page the moment the job is done, a little before the run ends:
        # read it without waiting for it (inner_text would wait 30 s for an element that is gone).
        label = page.evaluate("document.querySelector('#batch .item-pages')?.innerText ?? ''")
        status = page.evaluate("document.querySelector('#batch .item-status')?.innerText ?? ''")
        assert status != "failed", page.inner_text("#batch")
        match = re.match(r"(\d+)/(\d+) pages", label)
        if match:
            assert match.group(2) == "12"
            seen.add(int(match.group(1)))
            done = int(match.group(1))
            if (0 < done < 12 and not shot) or (4 <= done <= 8 and shot != "middle"):
                page.screenshot(path=str(artifacts / "document-job.png"), full_page=True)
                shot = "middle" if 4 <= done <= 8 else "early"
        page.wait_for_timeout(200)
    assert len({n for n in seen if 0 < n < 12}) >= 2, seen  # the bar moved in steps, not just 0 -> done
    page.wait_for_selector("#result-text")
    assert page.inner_text("#batch .item-status") == "done"
    assert page.locator("#page-nav .page-button").count() == 12
    for number in (1, 7, 12):
        assert page_text(page, number).splitlines() == texts[number - 1]
    # The job is in this browser's history, and reopens from the job record.
    page.reload()
    page.wait_for_selector("#history")
    entry = page.locator("#history .history-entry").first
    assert "twelve.pdf" in entry.inner_text() and "job" in entry.inner_text()
    entry.locator(".history-open").click()
    page.wait_for_selector("#page-nav", timeout=60_000)
    assert page.locator("#page-nav .page-button").count() == 12

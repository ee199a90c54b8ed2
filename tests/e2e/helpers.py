"""Small steps the browser tests share: drop files, choose an option, read, wait for the result."""

from __future__ import annotations

from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "invoice.png"
LINES = ["Browser test document", "Total amount due 42"]


def choose(page, trigger: str, option: str) -> None:
    page.click(trigger)
    page.get_by_role("option", name=option).click()


def upload(page, *paths: Path, accepted: bool = True) -> None:
    """Drop files; when they are accepted, wait until the backend holds them (the upload is asynchronous)."""
    page.set_input_files("#page input[type=file]", [str(p) for p in paths])
    if accepted:
        expected = paths[0].name if len(paths) == 1 else f"{len(paths)} files"
        page.wait_for_function(
            f"Boolean(document.querySelector('#file-label')?.innerText.includes({expected!r}))"
        )


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def read(page, timeout: float = 180_000, *, result: bool = True) -> None:
    """Press Read and wait until this run has finished (and, by default, a result is on screen)."""
    runs = int(page.get_attribute("#result", "data-runs") or 0)
    page.click("#submit")
    page.wait_for_function(
        f"Number(document.querySelector('#result')?.dataset.runs) > {runs}", timeout=timeout
    )
    if result:
        page.wait_for_selector("#result-text", timeout=timeout)

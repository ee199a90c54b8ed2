"""PDF intake: a document's bytes in, upright RGB page images out (pypdfium2), or a typed 4xx.

Rendering sits beside image intake, so the batch loop and the engines only ever see page images.
PDFium keeps global state and is not thread-safe: every call into it holds one process-wide lock.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pypdfium2 as pdfium
from PIL import Image

from gpu_worker.protocol import (
    InvalidRequest,
    PayloadTooLarge,
    resolve_pages,
    too_many_pages,
)

log = logging.getLogger(__name__)

_PDFIUM = threading.Lock()
POINTS_PER_INCH = 72.0
# PDF's own largest page is 200 x 200 inches; a page may still declare more (UserUnit, broken boxes).
MAX_SIDE_PX = 12_000
# Data format error, password error, security handler error (pypdfium2's err_code on PdfiumError).
_PASSWORD_ERRORS = (4, 5)


def looks_like_pdf(data: bytes) -> bool:
    """The `%PDF-` marker near the start (readers allow up to 1 KiB of junk before it)."""
    return b"%PDF-" in data[:1024]


@dataclass(frozen=True)
class RenderedPage:
    """One page of a document: its number (from 1) and its image."""

    number: int
    image: Image.Image


def render_scale(width_pt: float, height_pt: float, *, dpi: int, max_pixels: int) -> float:
    """Points -> pixels at `dpi`, shrunk so the page stays within `max_pixels` and MAX_SIDE_PX a side."""
    scale = dpi / POINTS_PER_INCH
    area = width_pt * height_pt * scale * scale
    if area > max_pixels:
        scale *= math.sqrt(max_pixels / area)
    longest = max(width_pt, height_pt) * scale
    if longest > MAX_SIDE_PX:
        scale *= MAX_SIDE_PX / longest
    return scale


class PdfFile:
    """An open PDF. Use as a context manager; every method takes the PDFium lock."""

    def __init__(self, data: bytes, *, max_bytes: int) -> None:
        if len(data) > max_bytes:
            raise PayloadTooLarge(
                f"The PDF is {len(data)} bytes; the limit is {max_bytes}.", param="messages"
            )
        if not looks_like_pdf(data):
            raise InvalidRequest("The file is not a PDF.", param="messages", code="invalid_pdf")
        with _PDFIUM:
            try:
                self._doc = pdfium.PdfDocument(data)
                self.page_count = len(self._doc)
            except pdfium.PdfiumError as exc:
                # PDFium's last error is process-wide and outlives the call that set it: confirm by the
                # trailer's /Encrypt entry, or a broken file read after an encrypted one says "encrypted".
                if getattr(exc, "err_code", None) in _PASSWORD_ERRORS and b"/Encrypt" in data:
                    raise InvalidRequest(
                        "The PDF is encrypted with a password; send it unlocked.",
                        param="messages",
                        code="pdf_encrypted",
                    ) from None
                raise InvalidRequest(
                    "The PDF could not be read (corrupt, truncated, or without pages).",
                    param="messages",
                    code="invalid_pdf",
                ) from None
        if self.page_count <= 0:
            self.close()
            raise InvalidRequest("The PDF has no pages.", param="messages", code="empty_pdf")

    def __enter__(self) -> PdfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free PDFium's memory for this document."""
        with _PDFIUM:
            self._doc.close()

    def render(self, number: int, *, dpi: int, max_pixels: int) -> Image.Image:
        """Page `number` (from 1) as an upright RGB image; a page PDFium cannot load is a 400 naming it."""
        with _PDFIUM:
            try:
                page = self._doc[number - 1]
            except (pdfium.PdfiumError, IndexError):
                raise InvalidRequest(
                    f"Page {number} of the PDF could not be read.", param="messages", code="invalid_pdf"
                ) from None
            try:
                width, height = page.get_size()  # points, /Rotate already applied
                if not (width > 0 and height > 0 and math.isfinite(width * height)):
                    raise InvalidRequest(
                        f"Page {number} of the PDF has no area.", param="messages", code="invalid_pdf"
                    )
                scale = render_scale(width, height, dpi=dpi, max_pixels=max_pixels)
                # Draw onto white: transparent pages and form fields come out as they print.
                bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255), may_draw_forms=True)
                image = bitmap.to_pil().convert("RGB")
                bitmap.close()
            except pdfium.PdfiumError:
                raise InvalidRequest(
                    f"Page {number} of the PDF could not be rendered.", param="messages", code="invalid_pdf"
                ) from None
            finally:
                page.close()
        return image


def open_pdf(data: bytes, *, max_bytes: int) -> PdfFile:
    """Open a PDF with the encrypted/corrupt/empty checks (400s) and the size limit (413)."""
    return PdfFile(data, max_bytes=max_bytes)


def iter_pages(
    pdf: PdfFile,
    selection: list[int] | None,
    *,
    max_pages: int,
    dpi: int,
    max_pixels: int,
    limit_hint: str = "",
) -> Iterator[RenderedPage]:
    """Render the selected pages (all by default) one at a time; over `max_pages` is a 413 before any work."""
    numbers = resolve_pages(selection, pdf.page_count)
    if len(numbers) > max_pages:
        raise too_many_pages(len(numbers), max_pages, limit_hint)
    for number in numbers:
        yield RenderedPage(number, pdf.render(number, dpi=dpi, max_pixels=max_pixels))


def render_pdf(
    data: bytes,
    *,
    max_bytes: int,
    max_pages: int,
    dpi: int,
    max_pixels: int,
    selection: list[int] | None = None,
    limit_hint: str = "",
) -> list[RenderedPage]:
    """Every selected page of a PDF as an image (the inline path: a few pages, all needed at once)."""
    with open_pdf(data, max_bytes=max_bytes) as pdf:
        return list(
            iter_pages(
                pdf, selection, max_pages=max_pages, dpi=dpi, max_pixels=max_pixels, limit_hint=limit_hint
            )
        )

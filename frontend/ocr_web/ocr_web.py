"""The Reflex app: only builds rx.App and registers the page."""

import reflex as rx

from ocr_web.pages.index import index
from ocr_web.state import OcrState

app = rx.App()
app.add_page(
    index,
    route="/",
    title="Document OCR",
    description="Read page images and PDFs into markdown or text, with boxes and an annotated copy.",
    image="/favicon.ico",
    on_load=OcrState.load_engine,
)

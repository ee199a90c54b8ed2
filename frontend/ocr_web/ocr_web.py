"""The Reflex app: only builds rx.App and registers the page."""

import reflex as rx

from ocr_web.pages.index import index

app = rx.App()
app.add_page(
    index,
    route="/",
    title="DeepSeek-OCR",
    description="Read page images into markdown or text, with boxes and an annotated copy.",
    image="/favicon.ico",
)

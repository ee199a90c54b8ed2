"""The one page: drop files, choose a task, read; results, downloads and this browser's history."""

from __future__ import annotations

import reflex as rx

from ocr_web.components.batch import batch_list, history_panel
from ocr_web.components.panels import error_callout, intro, options_form, preview, upload_zone
from ocr_web.components.result import result_view
from ocr_web.settings import get_settings
from ocr_web.state import MAX_FILES, OcrState


def index() -> rx.Component:
    """The page."""
    return rx.container(
        rx.vstack(
            intro(OcrState),
            rx.grid(
                rx.vstack(
                    upload_zone(OcrState, get_settings().upload_max_bytes, MAX_FILES),
                    preview(OcrState),
                    batch_list(OcrState),
                    options_form(OcrState),
                    error_callout(OcrState),
                    history_panel(OcrState),
                    width="100%",
                    spacing="4",
                    min_width="0",
                ),
                result_view(OcrState),
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="6",
                width="100%",
            ),
            spacing="5",
            width="100%",
        ),
        size="4",
        padding_y="6",
    )

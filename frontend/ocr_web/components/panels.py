"""Pure functions that build the page's parts from a state class."""

from __future__ import annotations

from typing import Any

import reflex as rx

from gpu_worker.protocol import MODES


def intro() -> rx.Component:
    """Title and how to use it."""
    return rx.vstack(
        rx.heading("DeepSeek-OCR", size="8"),
        rx.text(
            "Read a page image: drop a PNG, JPEG or WebP page, pick a size preset and a task, and press Read. "
            "You get the text (markdown with tables, or plain), the boxes found, and an annotated copy of the page.",
            color_scheme="gray",
        ),
        spacing="2",
    )


def upload_zone(state: Any, max_bytes: int) -> rx.Component:
    """Drag and drop (or click) one image; it goes to the Reflex backend at once."""
    return rx.upload(
        rx.vstack(
            rx.icon("image-up", size=32),
            rx.text("Drop a page image here, or click to choose one"),
            rx.text(f"PNG, JPEG or WebP, up to {max_bytes // 2**20} MB", size="1", color_scheme="gray"),
            rx.cond(state.file_label != "", rx.badge(state.file_label, id="file-label", size="2")),
            align="center",
            spacing="2",
        ),
        id="page",
        # No `accept`/`max_size` filter here: the drop zone would drop a refused file silently. The
        # backend reads the first bytes and the size of whatever arrives and says what is wrong.
        max_files=1,
        multiple=False,
        on_drop=state.take_upload(rx.upload_files(upload_id="page")),
        border="2px dashed var(--gray-7)",
        border_radius="12px",
        padding="2em",
        width="100%",
        cursor="pointer",
    )


def options_form(state: Any, task_labels: dict[str, str]) -> rx.Component:
    """Size preset, task, reference text for `locate`, and the Read button."""
    return rx.vstack(
        rx.text("Size preset (vision tokens per page)", weight="medium"),
        rx.select.root(
            rx.select.trigger(id="mode-select", width="100%"),
            rx.select.content(
                *[
                    rx.select.item(
                        f"{m.name}: up to {m.max_tiles} tiles, {m.image_tokens} tokens", value=m.name
                    )
                    for m in MODES.values()
                ]
            ),
            value=state.mode,
            on_change=state.set_mode,
        ),
        rx.text("Task", weight="medium"),
        rx.select.root(
            rx.select.trigger(id="task-select", width="100%"),
            rx.select.content(*[rx.select.item(label, value=name) for name, label in task_labels.items()]),
            value=state.task,
            on_change=state.set_task,
        ),
        rx.cond(
            state.needs_ref_text,
            rx.input(
                placeholder="Text to locate (up to 200 characters)",
                value=state.ref_text,
                on_change=state.set_ref_text,
                max_length=200,
                id="ref-text",
                width="100%",
            ),
        ),
        rx.button(
            rx.cond(state.running, rx.hstack(rx.spinner(size="2"), rx.text("Reading…")), rx.text("Read")),
            on_click=state.submit,
            disabled=state.running,
            id="submit",
            size="3",
            width="100%",
        ),
        width="100%",
        spacing="2",
    )


def error_callout(state: Any) -> rx.Component:
    """Any failure, in words."""
    return rx.cond(
        state.error != "",
        rx.callout(state.error, icon="triangle-alert", color_scheme="red", id="error", width="100%"),
    )


def result_view(state: Any) -> rx.Component:
    """Text (rendered or raw), copy, annotated image, boxes, timings, links."""
    return rx.cond(
        state.has_result,
        rx.vstack(
            rx.hstack(
                rx.button(
                    rx.cond(state.show_raw, "Show rendered", "Show raw"),
                    on_click=state.toggle_raw,
                    variant="soft",
                    id="toggle-raw",
                ),  # fmt: skip
                rx.button(
                    rx.icon("copy", size=16), "Copy text", on_click=state.copy_text, variant="soft", id="copy"
                ),
                rx.link("Result JSON", href=state.result_url, is_external=True, id="result-link"),
                wrap="wrap",
                spacing="3",
                align="center",
            ),
            rx.box(
                rx.cond(
                    state.show_raw,
                    rx.code_block(state.raw, language="markdown", wrap_long_lines=True, id="raw-text"),
                    rx.markdown(state.rendered, id="result-text"),
                ),
                width="100%",
                overflow_x="auto",
                border="1px solid var(--gray-5)",
                border_radius="8px",
                padding="1em",
            ),
            rx.foreach(
                state.notes, lambda note: rx.callout(note, icon="info", color_scheme="amber", size="1")
            ),
            rx.cond(
                state.annotated_url != "",
                rx.image(
                    src=state.annotated_url, alt="The page with the boxes drawn", id="annotated", width="100%"
                ),
            ),
            rx.cond(
                state.boxes.length() > 0,  # type: ignore[attr-defined]
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Label"),
                            rx.table.column_header_cell("Box [x1, y1, x2, y2] px"),
                        )
                    ),  # fmt: skip
                    rx.table.body(
                        rx.foreach(
                            state.boxes,
                            lambda b: rx.table.row(rx.table.cell(b["label"]), rx.table.cell(b["bbox"])),
                        ),  # fmt: skip
                    ),
                    id="boxes",
                    size="1",
                    width="100%",
                ),
            ),
            rx.text(
                state.engine,
                " · ",
                state.timings,
                " · request ",
                state.request_id,
                size="1",
                color_scheme="gray",
                id="meta",
            ),  # fmt: skip
            width="100%",
            spacing="3",
        ),
        rx.center(rx.text("The result shows here.", color_scheme="gray"), min_height="8em", width="100%"),
    )

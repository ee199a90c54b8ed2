"""The result side: text, downloads, the page with its boxes linked to the box table, and the meta line."""

from __future__ import annotations

from typing import Any

import reflex as rx

ACTIVE = "var(--orange-9)"


def _downloads(state: Any) -> rx.Component:
    def button(label: str, kind: str, icon: str) -> rx.Component:
        return rx.button(rx.icon(icon, size=14), label, size="1", variant="soft", on_click=state.download(kind),
                         id=f"dl-{kind}")  # fmt: skip

    return rx.hstack(
        rx.text("Download", size="2", weight="medium"),
        button(".md", "md", "file-text"),
        button(".txt", "txt", "file"),
        button(".json", "json", "braces"),
        rx.cond(state.page["annotated_url"] != "", button("annotated image", "image", "image")),
        button("all (.zip)", "zip", "archive"),
        wrap="wrap",
        spacing="2",
        align="center",
        id="downloads",
    )


def _page_nav(state: Any) -> rx.Component:
    return rx.cond(
        state.many_pages,
        rx.hstack(
            rx.text("Page", size="2"),
            rx.foreach(
                state.pages,
                lambda p, i: rx.button(
                    p["page"].to(str),
                    size="1",
                    variant=rx.cond(state.page_index == i, "solid", "outline"),
                    on_click=state.show_page(i),
                    class_name="page-button",
                    aria_label="Page " + p["page"].to(str),
                ),
            ),  # fmt: skip
            wrap="wrap",
            spacing="1",
            id="page-nav",
        ),
    )


def _text(state: Any) -> rx.Component:
    return rx.box(
        rx.cond(
            state.show_raw,
            rx.code_block(
                state.page["raw"].to(str), language="markdown", wrap_long_lines=True, id="raw-text"
            ),
            rx.cond(
                state.plain,
                # Plain text keeps its line breaks (markdown would join them into one paragraph).
                rx.el.div(state.page["text"].to(str), id="result-text", style={"whiteSpace": "pre-wrap"}),
                rx.markdown(state.page["rendered"].to(str), id="result-text"),
            ),
        ),
        width="100%",
        overflow_x="auto",
        border="1px solid var(--gray-5)",
        border_radius="8px",
        padding="1em",
    )


def _overlay_box(state: Any, b: Any) -> rx.Component:
    active = state.active_box == b["index"]
    return rx.box(
        position="absolute",
        left=b["left"],
        top=b["top"],
        width=b["width"],
        height=b["height"],
        border=rx.cond(active, f"3px solid {ACTIVE}", "1px solid rgba(79, 70, 229, 0.55)"),
        background=rx.cond(active, "rgba(249, 115, 22, 0.18)", "transparent"),
        on_mouse_enter=state.set_active(b["index"]),
        on_mouse_leave=state.set_active(-1),
        title=b["text"],
        id="box-" + b["index"].to(str),
        class_name=rx.cond(active, "page-box active", "page-box"),
    )


def _page_image(state: Any) -> rx.Component:
    """The page with one outline per box (no labels drawn over the text: the active box is named below)."""
    return rx.cond(
        state.base_image != "",
        rx.vstack(
            rx.box(
                rx.image(
                    src=state.base_image, alt="The page", id="page-image", width="100%", display="block"
                ),
                rx.foreach(state.boxes, lambda b: _overlay_box(state, b)),
                position="relative",
                width="100%",
            ),
            # The caption keeps its line when empty: a line appearing on hover would shift the table
            # under the pointer and move the highlight to the next row.
            rx.text(
                rx.cond(
                    state.active_box >= 0,
                    "Box "
                    + (state.active_box + 1).to(str)
                    + ": "
                    + state.boxes[state.active_box]["label"].to(str)
                    + rx.cond(
                        state.boxes_have_text, " — " + state.boxes[state.active_box]["text"].to(str), ""
                    ),
                    "Point at a box or a row of the table to see which is which.",
                ),
                size="2",
                id="active-caption",
                min_height="1.5em",
                width="100%",
                white_space="nowrap",
                overflow="hidden",
                text_overflow="ellipsis",
            ),  # fmt: skip
            width="100%",
            spacing="1",
        ),
    )


def _box_table(state: Any) -> rx.Component:
    def row(b: Any) -> rx.Component:
        return rx.table.row(
            rx.table.cell(b["number"]),
            rx.table.cell(b["label"]),
            rx.cond(state.boxes_have_text, rx.table.cell(b["text"])),
            rx.table.cell(b["bbox"], white_space="nowrap"),
            tab_index=0,
            on_mouse_enter=state.set_active(b["index"]),
            on_mouse_leave=state.set_active(-1),
            on_focus=state.set_active(b["index"]),
            on_blur=state.set_active(-1),
            background=rx.cond(state.active_box == b["index"], "var(--orange-3)", "transparent"),
            id="row-" + b["index"].to(str),
            cursor="pointer",
        )

    return rx.cond(
        state.boxes.length() > 0,  # type: ignore[attr-defined]
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("#"),
                        rx.table.column_header_cell("Label"),
                        rx.cond(state.boxes_have_text, rx.table.column_header_cell("Text")),
                        rx.table.column_header_cell("Box [x1, y1, x2, y2] px"),
                    )
                ),
                rx.table.body(rx.foreach(state.boxes, row)),
                id="boxes",
                size="1",
                width="100%",
            ),
            width="100%",
            overflow_x="auto",
        ),
    )


def result_view(state: Any) -> rx.Component:
    """The result (or the text streaming in, or a placeholder); `#result` is where a phone scrolls to."""
    return rx.box(
        rx.cond(
            state.has_result,
            rx.vstack(
                rx.hstack(
                    rx.text(state.result_name, weight="medium", id="result-name"),
                    rx.button(
                        rx.cond(state.show_raw, "Show rendered", "Show raw"),
                        on_click=state.toggle_raw,
                        variant="soft",
                        size="1",
                        id="toggle-raw",
                    ),
                    rx.button(
                        rx.icon("copy", size=14),
                        "Copy text",
                        on_click=state.copy_text,
                        variant="soft",
                        size="1",
                        id="copy",
                    ),
                    wrap="wrap",
                    spacing="3",
                    align="center",
                ),  # fmt: skip
                _downloads(state),
                _page_nav(state),
                rx.cond(
                    state.not_found != "",
                    rx.callout(
                        state.not_found, icon="search-x", color_scheme="orange", id="not-found", width="100%"
                    ),
                ),
                _text(state),
                rx.foreach(state.notes, lambda n: rx.callout(n, icon="info", color_scheme="amber", size="1")),
                rx.text(
                    state.page["tokens"].to(str), " · ", state.page["size"].to(str), size="2", id="tokens"
                ),
                _page_image(state),
                _box_table(state),
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
            rx.cond(
                state.partial != "",
                rx.el.div(state.partial, id="partial", style={"whiteSpace": "pre-wrap", "opacity": 0.8}),
                rx.center(
                    rx.text("The result shows here.", color_scheme="gray"), min_height="8em", width="100%"
                ),
            ),
        ),
        id="result",
        width="100%",
        custom_attrs={"data-runs": state.finished_runs.to(str)},
    )

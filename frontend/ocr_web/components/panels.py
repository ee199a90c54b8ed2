"""Pure functions that build the input side of the page from a state class."""

from __future__ import annotations

from typing import Any

import reflex as rx


def intro(state: Any) -> rx.Component:
    """Title, which engine is serving, and how to use it."""
    return rx.vstack(
        rx.hstack(
            rx.heading("Document OCR", size="8"),
            rx.cond(state.engine_name != "", rx.badge(state.engine_name, id="engine-name", size="3")),
            align="center",
            wrap="wrap",
            spacing="3",
        ),
        rx.text(
            "Drop page images or PDFs, pick a task, and press Read. You get the text (markdown with tables, "
            "or plain), the boxes found and an annotated copy of each page, to download or reopen later.",
            color_scheme="gray",
        ),
        rx.cond(
            state.cpu_note != "",
            rx.callout(state.cpu_note, icon="cpu", color_scheme="amber", id="engine-note", width="100%"),
        ),
        spacing="2",
        width="100%",
    )


def upload_zone(state: Any, max_bytes: int, max_files: int) -> rx.Component:
    """Drag and drop (or click) files; they go to the Reflex backend at once."""
    return rx.upload(
        rx.vstack(
            rx.icon("file-up", size=32),
            rx.text("Drop page images or PDFs here, or click to choose"),
            rx.text(
                f"PNG, JPEG, WebP or PDF, up to {max_bytes // 2**20} MB each, {max_files} files at once",
                size="1",
                color_scheme="gray",
            ),
            rx.cond(state.items.length() > 0, rx.badge(state.file_label, id="file-label", size="2")),  # type: ignore[attr-defined]
            align="center",
            spacing="2",
        ),
        id="page",
        # No `accept`/`max_size` filter here: the drop zone would drop a refused file silently. The
        # backend reads the first bytes and the size of whatever arrives and says what is wrong.
        max_files=max_files,
        multiple=True,
        on_drop=state.take_upload(rx.upload_files(upload_id="page")),
        border="2px dashed var(--gray-7)",
        border_radius="12px",
        padding="2em",
        width="100%",
        cursor="pointer",
    )


def preview(state: Any) -> rx.Component:
    """The chosen image before it is read."""
    return rx.cond(
        (state.preview_url != "") & ~state.has_result,
        rx.image(
            src=state.preview_url,
            alt="The chosen page",
            id="preview",
            max_height="320px",
            border="1px solid var(--gray-5)",
            border_radius="8px",
        ),  # fmt: skip
    )


def _labelled(label: str, html_for: str, field: rx.Component, note: Any = None) -> rx.Component:
    parts = [rx.el.label(label, html_for=html_for, style={"fontWeight": 500}), field]
    if note is not None:
        parts.append(rx.cond(note != "", rx.text(note, size="1", color_scheme="gray", id=f"{html_for}-note")))
    return rx.vstack(*parts, spacing="1", width="100%")


def options_form(state: Any) -> rx.Component:
    """Task, size preset, the locate text or custom prompt, and the Read button."""
    task_select = rx.select.root(
        rx.select.trigger(id="task-select", width="100%"),
        rx.select.content(
            rx.foreach(
                state.task_options,
                lambda o: rx.select.item(
                    o["label"], value=o["name"].to(str), disabled=~o["enabled"].to(bool)
                ),
            )
        ),
        value=state.task,
        on_change=state.set_task,
    )
    mode_select = rx.select.root(
        rx.select.trigger(id="mode-select", width="100%"),
        rx.select.content(
            rx.foreach(state.mode_options, lambda m: rx.select.item(m["label"], value=m["name"].to(str)))
        ),
        value=state.mode,
        on_change=state.set_mode,
        disabled=~state.presets_matter,
    )
    mode_note = rx.cond(
        state.presets_matter,
        "Vision tokens per page: a ceiling; the page's shape decides how many it takes.",
        "This engine reads every page the same way: the presets change nothing here.",
    )
    return rx.vstack(
        _labelled("Task", "task-select", task_select, state.task_note),
        _labelled("Size preset", "mode-select", mode_select, mode_note),
        rx.cond(
            state.needs_ref_text,
            _labelled(
                "Text to locate",
                "ref-text",
                rx.input(
                    placeholder="up to 200 characters",
                    value=state.ref_text,
                    on_change=state.set_ref_text,
                    max_length=200,
                    id="ref-text",
                    width="100%",
                ),
            ),
        ),  # fmt: skip
        rx.cond(
            state.needs_prompt,
            _labelled(
                "Prompt",
                "prompt",
                rx.text_area(
                    placeholder="e.g. List every date on this page.",
                    value=state.prompt,
                    on_change=state.set_prompt,
                    max_length=4000,
                    id="prompt",
                    width="100%",
                ),
            ),
        ),  # fmt: skip
        rx.button(
            rx.cond(state.running, rx.hstack(rx.spinner(size="2"), rx.text("Reading…")), rx.text("Read")),
            on_click=state.submit,
            disabled=state.running,
            id="submit",
            size="3",
            width="100%",
        ),
        rx.cond(
            state.running,
            rx.text("Reading for ", state.elapsed, id="elapsed", size="2", color_scheme="gray"),
        ),
        width="100%",
        spacing="3",
    )


def error_callout(state: Any) -> rx.Component:
    """Any failure, in words."""
    return rx.cond(
        state.error != "",
        rx.callout(state.error, icon="triangle-alert", color_scheme="red", id="error", width="100%"),
    )

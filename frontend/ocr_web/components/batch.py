"""The batch of files (each one's state, open when done) and this browser's history."""

from __future__ import annotations

from typing import Any

import reflex as rx


def _item_row(state: Any, item: Any) -> rx.Component:
    return rx.hstack(
        rx.icon(rx.cond(item["kind"] == "pdf", "file-text", "image"), size=16),
        rx.vstack(
            rx.text(item["name"], weight="medium", size="2", class_name="item-name"),
            rx.cond(
                item["status"] == "job",
                rx.hstack(
                    rx.progress(
                        value=item["progress"].to(int), max=100, width="10em", class_name="item-progress"
                    ),
                    rx.text(item["pages"], size="1", class_name="item-pages"),
                    align="center",
                ),
            ),
            rx.cond(item["error"] != "", rx.text(item["error"], size="1", color_scheme="red")),
            spacing="1",
            flex="1",
            min_width="0",
        ),
        rx.badge(
            item["status_label"],
            color_scheme=rx.match(
                item["status"],
                ("done", "green"),
                ("failed", "red"),
                ("reading", "blue"),
                ("job", "blue"),
                "gray",
            ),
            class_name="item-status",
        ),  # fmt: skip
        rx.cond(
            item["status"] == "done",
            rx.button(
                "Open",
                size="1",
                variant=rx.cond(state.current == item["id"], "solid", "soft"),
                on_click=state.open_item(item["id"]),
                class_name="item-open",
            ),  # fmt: skip
        ),
        width="100%",
        align="center",
        spacing="2",
        class_name="batch-item",
    )


def batch_list(state: Any) -> rx.Component:
    """Every file of the batch with its state; shown when there is more than one, or a document."""
    return rx.cond(
        state.items.length() > 0,  # type: ignore[attr-defined]
        rx.vstack(
            rx.foreach(state.items, lambda item: _item_row(state, item)),
            id="batch",
            width="100%",
            spacing="2",
            padding="0.75em",
            border="1px solid var(--gray-5)",
            border_radius="8px",
        ),
    )


def history_panel(state: Any) -> rx.Component:
    """Recent results and jobs of this browser (kept in its localStorage), reopened with fresh links."""
    return rx.cond(
        state.history.length() > 0,  # type: ignore[attr-defined]
        rx.vstack(
            rx.hstack(
                rx.text("Recent in this browser", weight="medium"),
                rx.spacer(),
                rx.button(
                    "Clear", size="1", variant="ghost", on_click=state.clear_history, id="history-clear"
                ),
                width="100%",
            ),
            rx.foreach(
                state.history,
                lambda e: rx.hstack(
                    rx.text(
                        e["name"], size="2", class_name="history-name", flex="1", min_width="0", trim="both"
                    ),
                    rx.badge(rx.cond(e["kind"] == "job", "job", e["task"]), size="1"),
                    rx.text(e["when"], size="1", color_scheme="gray"),
                    rx.button(
                        "Open",
                        size="1",
                        variant="soft",
                        on_click=state.reopen(e["id"]),
                        class_name="history-open",
                        disabled=state.running,
                    ),  # fmt: skip
                    width="100%",
                    align="center",
                    class_name="history-entry",
                ),
            ),
            id="history",
            width="100%",
            spacing="2",
        ),
    )

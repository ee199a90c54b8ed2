"""The batch of files as the page lists them: plain dicts (Reflex sends them to the browser as they are)."""

from __future__ import annotations

from typing import Any

STATUS_LABELS = {
    "ready": "ready",
    "reading": "reading…",
    "done": "done",
    "failed": "failed",
    "job": "reading as a job",
}


def new_item(item_id: str, name: str, size: int, is_pdf: bool) -> dict[str, Any]:
    """A file just dropped, not read yet."""
    return {"id": item_id, "name": name, "size": f"{size / 1024:.0f} KB", "kind": "pdf" if is_pdf else "image",
            "status": "ready", "status_label": "ready", "progress": 0, "pages": "", "error": ""}  # fmt: skip


def updated(items: list[dict[str, Any]], item_id: str, **changes: Any) -> list[dict[str, Any]]:
    """A new list with one item changed (a new list, so Reflex sees the change)."""
    result = []
    for item in items:
        if item["id"] == item_id:
            item = {**item, **changes}
            if "status" in changes:
                item["status_label"] = STATUS_LABELS.get(changes["status"], changes["status"])
        result.append(item)
    return result


def job_progress(record: dict[str, Any]) -> dict[str, Any]:
    """The item's progress from a job record: pages done of total, in percent for the bar."""
    done, total = int(record.get("pages_done") or 0), int(record.get("pages_total") or 0)
    return {"pages": f"{done}/{total or '?'} pages", "progress": int(100 * done / total) if total else 0}

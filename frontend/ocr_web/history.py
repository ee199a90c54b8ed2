"""This browser's recent results and jobs, kept as JSON in its localStorage (ids only: links are re-signed
when an entry is reopened)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

MAX_ENTRIES = 20
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def entries(stored: str) -> list[dict[str, Any]]:
    """The entries from the stored JSON; anything malformed (it is the browser's to edit) is dropped."""
    try:
        items = json.loads(stored or "[]")
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    good = []
    for item in items:
        if (
            isinstance(item, dict)
            and _ID.match(str(item.get("id", "")))
            and item.get("kind") in ("result", "job")
        ):
            good.append({
                "id": str(item["id"]),
                "kind": item["kind"],
                "name": str(item.get("name") or "page")[:120],
                "task": str(item.get("task") or "")[:20],
                "when": str(item.get("when") or "")[:20],
                "pages": int(item.get("pages") or 1) if str(item.get("pages") or "1").isdigit() else 1,
            })  # fmt: skip
    return good[:MAX_ENTRIES]


def added(stored: str, entry_id: str, kind: str, name: str, task: str, pages: int = 1) -> str:
    """The stored JSON with this entry first (a reopened id moves up, never twice)."""
    items = [e for e in entries(stored) if e["id"] != entry_id]
    items.insert(0, {"id": entry_id, "kind": kind, "name": name, "task": task,
                     "when": time.strftime("%Y-%m-%d %H:%M"), "pages": pages})  # fmt: skip
    return json.dumps(items[:MAX_ENTRIES])

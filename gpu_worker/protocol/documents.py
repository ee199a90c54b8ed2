"""Documents: page selection (`"1-3,7"`) and the page limits, shared by the worker and the edge's jobs routes."""

from __future__ import annotations

import re

from gpu_worker.protocol.errors import InvalidRequest, PayloadTooLarge

MAX_PAGE_SELECTION_CHARS = 1000
_PART_RE = re.compile(r"^\s*(\d{1,6})\s*(?:-\s*(\d{1,6})\s*)?$")


def parse_page_selection(spec: str | None, *, max_pages: int) -> list[int] | None:
    """`"1-3,7"` -> [1, 2, 3, 7] (1-based, ascending, no repeats); None or blank -> None (every page)."""
    if spec is None or not spec.strip():
        return None
    if len(spec) > MAX_PAGE_SELECTION_CHARS:
        raise InvalidRequest(
            f"`pages` is longer than {MAX_PAGE_SELECTION_CHARS} characters.",
            param="pages",
            code="invalid_pages",
        )
    chosen: set[int] = set()
    for part in spec.split(","):
        match = _PART_RE.match(part)
        if not match:
            raise InvalidRequest(
                f"`pages` must look like `1-3,7` (page numbers from 1 and ranges); {part.strip()!r} is not.",
                param="pages",
                code="invalid_pages",
            )
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first < 1 or last < first:
            raise InvalidRequest(
                f"`pages`: {part.strip()!r} is not a range of pages counted from 1.",
                param="pages",
                code="invalid_pages",
            )
        # Distinct pages against the limit: overlapping ranges ("1-300,1-300") read each page once. The new
        # pages are counted without building a range past the limit (a "1-999999" stays cheap).
        new = last - first + 1 - sum(1 for page in chosen if first <= page <= last)
        if len(chosen) + new > max_pages:
            raise too_many_pages(len(chosen) + new, max_pages)
        chosen.update(range(first, last + 1))
    return sorted(chosen)


def resolve_pages(selection: list[int] | None, total: int) -> list[int]:
    """The page numbers to read from a document of `total` pages; a selected page past the end is a 400."""
    if selection is None:
        return list(range(1, total + 1))
    missing = [page for page in selection if page > total]
    if missing:
        raise InvalidRequest(
            f"The document has {total} page(s); page {missing[0]} does not exist.",
            param="pages",
            code="page_out_of_range",
        )
    return selection


def too_many_pages(count: int, limit: int, hint: str = "") -> PayloadTooLarge:
    """The 413 for a document (or selection) over a page limit."""
    return PayloadTooLarge(
        f"The document has {count} pages to read; the limit here is {limit}.{hint}",
        param="pages",
        code="too_many_pages",
    )

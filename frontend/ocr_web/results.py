"""A chat.completion (one image or a document's pages) turned into what the page shows."""

from __future__ import annotations

import html
import re
from typing import Any

import nh3

from ocr_web.sanitize import safe_markdown

_GROUNDED = re.compile(r"<\|ref\|>(?P<label>.*?)<\|/ref\|>\s*<\|det\|>(?P<det>.*?)<\|/det\|>", re.DOTALL)
_QUAD = re.compile(r"\[\s*-?\d+\s*,\s*-?\d+\s*,\s*-?\d+\s*,\s*-?\d+\s*\]")
_TAG = re.compile(r"<\|[^|]{0,40}\|>")


def grounded_texts(raw: str) -> list[str]:
    """The text after each grounded box in raw DeepSeek output (one entry per box, in order)."""
    matches = list(_GROUNDED.finditer(raw))
    texts: list[str] = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(raw)
        text = _TAG.sub("", raw[match.end() : end]).strip()
        texts.extend([text] * len(_QUAD.findall(match.group("det"))))
    return texts


def box_rows(
    boxes: list[dict[str, Any]], raw: str, task: str, width: int, height: int
) -> list[dict[str, Any]]:
    """Each box with its recognised text and its place on the image in percent (for the overlay)."""
    texts = grounded_texts(raw)
    if len(texts) != len(boxes):
        texts = []
    rows = []
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = (int(v) for v in box["bbox"])
        text = box.get("text") or (texts[i] if texts else "") or (box["label"] if task == "locate" else "")
        rows.append({
            "index": i,
            "number": str(i + 1),
            "label": str(box["label"])[:80],
            "text": text,
            "bbox": f"{x1}, {y1}, {x2}, {y2}",
            "left": f"{100 * x1 / max(width, 1):.3f}%",
            "top": f"{100 * y1 / max(height, 1):.3f}%",
            "width": f"{100 * max(x2 - x1, 1) / max(width, 1):.3f}%",
            "height": f"{100 * max(y2 - y1, 1) / max(height, 1):.3f}%",
        })  # fmt: skip
    return rows


def tokens_label(page: dict[str, Any], mode_tokens: int | None) -> str:
    """What the page actually cost in vision tokens, against the preset's ceiling."""
    used = page.get("image_tokens")
    if not used:  # absent, or 0 from an engine that reads pixels without vision tokens (RapidOCR)
        return "Vision tokens: not reported by this engine"
    tiles = page.get("tiles")
    grid = (
        f" ({tiles[0]}×{tiles[1]} tiles)" if isinstance(tiles, list) and len(tiles) == 2 and tiles[0] else ""
    )
    ceiling = f" of up to {mode_tokens}" if mode_tokens else ""
    return f"Vision tokens: {used}{grid}{ceiling}"


def page_view(page: dict[str, Any], task: str, mode_tokens: int | None) -> dict[str, Any]:
    """One page: its text (markdown rendered safely, plain text kept line by line), boxes, annotated image."""
    size = page.get("image") or {}
    width, height = int(size.get("width") or 1), int(size.get("height") or 1)
    text = str(page.get("text") or "")
    return {
        "page": int(page.get("page") or 1),
        "text": text,
        "raw": str(page.get("raw") or text),
        "rendered": safe_markdown(text),
        "boxes": box_rows(page.get("boxes") or [], str(page.get("raw") or ""), task, width, height),
        "annotated_url": ((page.get("annotated_image") or {}).get("url")) or "",
        "size": f"{width}×{height} px",
        "tokens": tokens_label(page, mode_tokens),
    }


def view_of(reply: dict[str, Any], mode_tokens: dict[str, int], ref_text: str = "") -> dict[str, Any]:
    """The whole result: pages, notes and where it came from."""
    ocr = reply.get("ocr") or {}
    choice = (reply.get("choices") or [{}])[0]
    task = str(ocr.get("task") or "markdown")
    ceiling = mode_tokens.get(str(ocr.get("mode") or ""))
    if ocr.get("pages"):
        pages = [page_view(p, task, ceiling) for p in ocr["pages"]]
    else:
        content = (choice.get("message") or {}).get("content") or ""
        pages = [page_view({**ocr, "page": 1, "text": content}, task, ceiling)]
    notes = list(ocr.get("warnings") or [])
    if choice.get("finish_reason") == "length":
        notes.append("The output hit the token limit and may be cut short.")
    if ocr.get("repetition_detected"):
        notes.append("The model started repeating itself; the end of the text may be unreliable.")
    not_found = ""
    if task == "locate" and not any(p["boxes"] for p in pages):
        not_found = f"“{ref_text or ocr.get('ref_text') or 'the text'}” was not found on this page."
    t = ocr.get("timings_ms") or {}
    return {
        "request_id": str(ocr.get("request_id") or reply.get("id") or ""),
        "task": task,
        "plain": task in ("ocr", "describe"),
        "engine": f"{ocr.get('engine', '?')} ({reply.get('model', '?')})",
        "timings": f"queue {t.get('queue', 0):.0f} ms, inference {t.get('inference', 0):.0f} ms, total {t.get('total', 0):.0f} ms",
        "notes": notes,
        "not_found": not_found,
        "result_url": ((ocr.get("result") or {}).get("url")) or "",
        "pages": pages,
    }


def plain_text(markdown: str) -> str:
    """Markdown/HTML output as plain text for a .txt download (tags dropped, table cells tab-separated)."""
    text = re.sub(r"</t[dh]>\s*<t[dh][^>]*>", "\t", markdown)
    text = re.sub(r"</tr>", "\n", text)
    text = html.unescape(nh3.clean(text, tags=set()))
    text = re.sub(r"^\s{0,3}#{1,6}\s+", "", text, flags=re.MULTILINE)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

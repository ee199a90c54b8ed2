"""Parse the model's grounded output into pixel boxes and clean text. Never `eval`s anything."""

from __future__ import annotations

import re

from gpu_worker.protocol import Box, strip_special_tokens

COORD_MAX = 999
# A complete ref/det pair, or one cut off by the token cap (no closing tags).
_GROUNDED_RE = re.compile(
    r"<\|ref\|>(?P<label>.*?)(?:<\|/ref\|>|$)\s*(?:<\|det\|>(?P<det>.*?)(?:<\|/det\|>|$))?",
    re.DOTALL,
)
_QUAD_RE = re.compile(r"\[\s*(-?\d{1,6})\s*,\s*(-?\d{1,6})\s*,\s*(-?\d{1,6})\s*,\s*(-?\d{1,6})\s*\]")
# A tag cut in half at the very end of a truncated output, e.g. "<|de" or "<|ref|>tit".
_PARTIAL_TAG_RE = re.compile(r"<\|?[/a-z]{0,4}\|?$")
_LABEL_MAX = 200


def to_pixels(values: tuple[int, int, int, int], width: int, height: int) -> list[int]:
    """Normalised 0..999 coordinates to pixels of the original image, clamped and ordered."""
    x1, y1, x2, y2 = (min(max(v, 0), COORD_MAX) for v in values)
    px = [round(x1 / COORD_MAX * width), round(y1 / COORD_MAX * height)]
    px += [round(x2 / COORD_MAX * width), round(y2 / COORD_MAX * height)]
    left, right = sorted((px[0], px[2]))
    top, bottom = sorted((px[1], px[3]))
    return [left, top, right, bottom]


def parse_grounded(raw: str, width: int, height: int) -> tuple[str, list[Box]]:
    """Return (clean text without tags, boxes in pixels) from raw model output."""
    boxes: list[Box] = []
    for match in _GROUNDED_RE.finditer(raw):
        label = strip_special_tokens(match.group("label") or "").strip()[:_LABEL_MAX] or "text"
        for quad in _QUAD_RE.findall(match.group("det") or ""):
            boxes.append(Box(label=label, bbox=to_pixels(tuple(int(v) for v in quad), width, height)))  # type: ignore[arg-type]
    text = _GROUNDED_RE.sub("", raw)
    text = _PARTIAL_TAG_RE.sub("", strip_special_tokens(text))
    # Grounded markdown puts a tag pair before each block: drop the blank lines it leaves behind.
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text, boxes


def boxes_as_text(boxes: list[Box]) -> str:
    """One line per box, for answers that are only boxes (locate)."""
    return "\n".join(f"{b.label}: [{', '.join(str(v) for v in b.bbox)}]" for b in boxes)


class StreamCleaner:
    """Turns raw model pieces into deltas of the clean text, so a stream adds up to the final content."""

    def __init__(self) -> None:
        self.raw = ""
        self.sent = ""

    def feed(self, piece: str) -> str:
        """The new clean text that this raw piece makes safe to send (may be empty)."""
        self.raw += piece
        clean, _ = parse_grounded(self.raw, 1, 1)
        return self._advance(clean)

    def finish(self, final_text: str) -> str:
        """What remains of the final text (empty if the stream already sent it all)."""
        return self._advance(final_text)

    def _advance(self, clean: str) -> str:
        # Only ever append: text that a later tag rewrote stays as sent, the final chunk's `ocr` is exact.
        if not clean.startswith(self.sent):
            return ""
        delta = clean[len(self.sent) :]
        self.sent = clean
        return delta

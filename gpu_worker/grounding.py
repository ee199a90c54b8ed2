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
_BLANK_RUN_RE = re.compile(r"\n{3,}")


def to_pixels(values: tuple[int, int, int, int], width: int, height: int) -> list[int]:
    """Normalised 0..999 coordinates to pixels of the original image, clamped and ordered."""
    x1, y1, x2, y2 = (min(max(v, 0), COORD_MAX) for v in values)
    px = [round(x1 / COORD_MAX * width), round(y1 / COORD_MAX * height)]
    px += [round(x2 / COORD_MAX * width), round(y2 / COORD_MAX * height)]
    left, right = sorted((px[0], px[2]))
    top, bottom = sorted((px[1], px[3]))
    return [left, top, right, bottom]


def _clean(text: str) -> str:
    """Text between grounded blocks without control tokens, a cut-off tag at its end, or blank-line runs."""
    text = _PARTIAL_TAG_RE.sub("", strip_special_tokens(text))
    # Grounded markdown puts a tag pair before each block: drop the blank lines it leaves behind.
    return _BLANK_RUN_RE.sub("\n\n", text).strip()


def parse_grounded(raw: str, width: int, height: int, *, locate: bool = False) -> tuple[str, list[Box]]:
    """Return (clean text without tags, boxes in pixels) from raw model output.

    Each box's `text` is the text that follows its block up to the next block. A locate answer is only
    boxes (the model names what it found in `<|ref|>`): each box gets that name as its text. Any other
    task's boxes keep their own text, none when nothing follows them (a page of pictures has no text).
    """
    boxes: list[Box] = []
    matches = list(_GROUNDED_RE.finditer(raw))
    for index, match in enumerate(matches):
        label = strip_special_tokens(match.group("label") or "").strip()[:_LABEL_MAX] or "text"
        end = matches[index + 1].start() if index + 1 < len(matches) else len(raw)
        following = _clean(raw[match.end() : end]) or None
        for quad in _QUAD_RE.findall(match.group("det") or ""):
            bbox = to_pixels(tuple(int(v) for v in quad), width, height)  # type: ignore[arg-type]
            boxes.append(Box(label=label, bbox=bbox, text=following))
    text = _clean(_GROUNDED_RE.sub("", raw))
    if locate and not text:
        boxes = [box.model_copy(update={"text": box.label}) for box in boxes]
    return text, boxes


def boxes_as_text(boxes: list[Box]) -> str:
    """One line per box, for answers that are only boxes (locate)."""
    return "\n".join(f"{b.label}: [{', '.join(str(v) for v in b.bbox)}]" for b in boxes)


class StreamCleaner:
    """Turns raw model pieces into deltas of the clean text, so a stream adds up to the final content.

    Incremental: raw text is settled (cleaned once, never re-read) up to a cut that no grounded block or
    control token can span, so each piece costs about its own length, not the output so far. Clean text
    is sent only once no later input can change it: trailing whitespace and a possible cut-off tag wait.
    """

    def __init__(self) -> None:
        self.tail = ""  # raw text not yet settled
        self._settled = ""  # clean (tag-free) text settled but not yet sent
        self._started = False  # leading whitespace is stripped from the final text: skip it
        self._sent: list[str] = []

    def feed(self, piece: str) -> str:
        """The new clean text that this raw piece makes safe to send (may be empty)."""
        self.tail += piece
        cut, clean = self._cut()
        if cut:
            self._settled += clean
            self.tail = self.tail[cut:]
        return self._emit()

    def finish(self, final_text: str) -> str:
        """What remains of the final text (empty if the stream already sent it all)."""
        sent = "".join(self._sent)
        return final_text[len(sent) :] if final_text.startswith(sent) else ""

    def _cut(self) -> tuple[int, str]:
        """The longest prefix of `tail` whose cleaning no later input can change, and that cleaning."""
        tail = self.tail
        cut = len(tail) - 1  # `$` also matches before a final newline: never settle the last character
        blocks: list[tuple[int, int]] = []
        for match in _GROUNDED_RE.finditer(tail):
            if match.end() <= cut and _closed(tail, match):
                blocks.append(match.span())
                continue
            cut = min(cut, match.start())  # an open block (or one reaching the cut) waits whole
            break
        while cut > 0:
            clean = strip_special_tokens(_GROUNDED_RE.sub("", tail[:cut]))
            if not _ends_in_token_prefix(clean):
                return cut, clean
            cut = tail.rfind("<", 0, cut)  # settle before the tag that may still be completing
            cut = next((start for start, end in blocks if start < cut < end), cut)  # never inside a block
        return 0, ""

    def _emit(self) -> str:
        text = self._settled
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        keep = _PARTIAL_TAG_RE.search(text)  # a tag-like end is dropped if the output ends there
        ready = (text[: keep.start()] if keep else text).rstrip()  # trailing space may be stripped
        self._settled = text[len(ready) :]
        if not ready:
            return ""
        # Both ends of `ready` are non-blank, so every newline run lies wholly inside it.
        delta = _BLANK_RUN_RE.sub("\n\n", ready)
        self._sent.append(delta)
        return delta


def _closed(tail: str, match: re.Match[str]) -> bool:
    """Whether more text can no longer change this block: its tags closed and, without a det, text after it."""
    whole = match.group(0)
    if "<|/ref|>" not in whole:  # the label ran to the end of the text so far
        return False
    if match.group("det") is not None:
        return whole.endswith("<|/det|>")
    rest = tail[match.end() : match.end() + len("<|det|>")]  # `\s*` then a det may still follow
    return bool(rest) and not "<|det|>".startswith(rest)


# A control token cut at the end: "<", "<|name", "<|name|", "<｜name", "<imag"; tokens hold no < > or newline.
_TOKEN_PREFIX_RE = re.compile(r"<(?:[|｜][^<>\n]{0,66}|i(?:m(?:a(?:ge?)?)?)?)?$", re.IGNORECASE)


def _ends_in_token_prefix(text: str) -> bool:
    return bool(_TOKEN_PREFIX_RE.search(text[-80:])) and not text.endswith("\n")

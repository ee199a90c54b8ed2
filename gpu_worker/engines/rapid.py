"""RapidOCR on CPU (its ONNX models ship inside the wheel): ocr, markdown, locate."""

from __future__ import annotations

import difflib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from gpu_worker.engines.base import Engine, EngineLoadError
from gpu_worker.grounding import boxes_as_text
from gpu_worker.protocol import MODEL_ID_RAPIDOCR, Box
from gpu_worker.types import OcrRequest, OcrResult, TokenCallback

log = logging.getLogger(__name__)
LOCATE_MIN_SIMILARITY = 0.8
# RapidOCR scales the long side to 2000 px and rounds each side to a multiple of 32: a page thinner than
# about 1:62 rounds its short side to 0 and its resize fails. Pad such pages (white, right/bottom, so
# boxes keep their coordinates) to at most this ratio.
MAX_ASPECT_RATIO = 40


def pad_to_aspect(image: Image.Image, max_ratio: float = MAX_ASPECT_RATIO) -> Image.Image:
    """The image, padded with white on the right or bottom so that long side / short side <= max_ratio."""
    width, height = image.size
    if max(width, height) <= max_ratio * min(width, height):
        return image
    size = (
        (width, math.ceil(width / max_ratio)) if width > height else (math.ceil(height / max_ratio), height)
    )
    canvas = Image.new("RGB", size, (255, 255, 255))
    canvas.paste(image, (0, 0))
    return canvas


@dataclass
class Line:
    text: str
    bbox: list[int]  # x1, y1, x2, y2 in pixels

    @property
    def centre_y(self) -> float:
        return (self.bbox[1] + self.bbox[3]) / 2


def reading_order(lines: list[Line]) -> list[list[Line]]:
    """Group lines into rows (vertical centre inside the row's span), top to bottom, left to right."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda item: (item.bbox[1], item.bbox[0])):
        if rows:
            top = min(item.bbox[1] for item in rows[-1])
            bottom = max(item.bbox[3] for item in rows[-1])
            if top <= line.centre_y <= bottom:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda item: item.bbox[0]) for row in rows]


def _squash(text: str) -> str:
    return "".join(text.casefold().split())


def matches(ref_text: str, line_text: str) -> bool:
    """Case- and spacing-tolerant match: containment, or a close fuzzy match of the best window."""
    ref, line = _squash(ref_text), _squash(line_text)
    if not ref or not line:
        return False
    if ref in line or (len(line) >= 0.8 * len(ref) and line in ref):
        return True
    matcher = difflib.SequenceMatcher(None, ref, line, autojunk=False)
    match = matcher.find_longest_match(0, len(ref), 0, len(line))
    start = max(0, match.b - match.a)
    window = line[start : start + len(ref)]
    return difflib.SequenceMatcher(None, ref, window, autojunk=False).ratio() >= LOCATE_MIN_SIMILARITY


class RapidOcrEngine(Engine):
    """CPU engine for machines without a GPU; the model of the local stack and of CI."""

    name = "rapidocr"
    model_id = MODEL_ID_RAPIDOCR
    device = "cpu"
    tasks = ("markdown", "ocr", "locate")

    def __init__(self) -> None:
        self._ocr: Any = None

    def load(self) -> None:
        """Load the detector and recogniser shipped in the wheel, and read one blank page."""
        try:
            from rapidocr import RapidOCR

            self._ocr = RapidOCR()
            # Its own logger announces every model file at INFO and warns on blank pages.
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
            self._ocr(np.full((64, 64, 3), 255, dtype=np.uint8))
        except Exception as exc:
            raise EngineLoadError(f"RapidOCR failed to load: {exc}") from exc

    def read_lines(self, request: OcrRequest) -> list[Line]:
        """Detected text lines with axis-aligned pixel boxes."""
        if self._ocr is None:
            raise EngineLoadError("RapidOCR engine used before load()")
        image = request.image if request.image.mode == "RGB" else request.image.convert("RGB")
        output = self._ocr(np.asarray(pad_to_aspect(image)))
        if output.boxes is None or output.txts is None:
            return []
        width, height = request.image.size
        lines = []
        for quad, text in zip(output.boxes, output.txts, strict=False):
            xs, ys = quad[:, 0], quad[:, 1]
            bbox = [
                max(0, int(xs.min())),
                max(0, int(ys.min())),
                min(width, int(xs.max())),
                min(height, int(ys.max())),
            ]
            if text.strip():
                lines.append(Line(text.strip(), bbox))
        return lines

    def run(self, batch: list[OcrRequest], on_token: TokenCallback | None = None) -> list[OcrResult]:
        """Read each page in turn (RapidOCR has no batched path worth using on CPU)."""
        results = []
        for row, request in enumerate(batch):
            started = time.perf_counter()
            try:
                self.check_task(request.task)
                result = self._run_one(request)
            except Exception as exc:  # one bad page fails alone
                log.exception("rapidocr failed on request %s", request.request_id)
                result = OcrResult(error=exc)
            result.inference_ms = (time.perf_counter() - started) * 1000
            if on_token is not None and request.stream and result.error is None and result.text:
                on_token(row, result.text)
            results.append(result)
        return results

    def _run_one(self, request: OcrRequest) -> OcrResult:
        rows = reading_order(self.read_lines(request))
        if request.task == "locate":
            ref = request.ref_text or ""
            hits = [line for row in rows for line in row if matches(ref, line.text)]
            boxes = [Box(label=ref, bbox=line.bbox, text=line.text) for line in hits]
            text = boxes_as_text(boxes)
        else:
            boxes = [Box(label="text", bbox=line.bbox, text=line.text) for row in rows for line in row]
            separator = "\n\n" if request.task == "markdown" else "\n"
            text = separator.join(" ".join(line.text for line in row) for row in rows)
        words = len(text.split())
        if request.max_new_tokens is not None and words > request.max_new_tokens:
            text = " ".join(text.split()[: request.max_new_tokens])
            return OcrResult(text=text, raw=text, boxes=boxes, completion_tokens=request.max_new_tokens,
                             finish_reason="length")  # fmt: skip
        # RapidOCR has no tokenizer: completion tokens are counted as words.
        return OcrResult(text=text, raw=text, boxes=boxes, completion_tokens=words)

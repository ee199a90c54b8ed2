"""What flows between serving, the batching loop and the engines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from gpu_worker.protocol import Box

# on_token(row, text_piece): called from the engine's thread as a row generates text.
TokenCallback = Callable[[int, str], None]


@dataclass
class OcrRequest:
    """One page to read: the decoded image and what to do with it."""

    request_id: str
    image: Image.Image
    task: str
    mode: str
    prompt: str
    ref_text: str | None = None
    max_new_tokens: int | None = None
    temperature: float = 0.0
    # Its text goes out as it is generated (through `on_token`); otherwise it is decoded once, at the end.
    # Set by `BatchLoop.submit` from whether the request came with a piece callback.
    stream: bool = False


@dataclass
class OcrResult:
    """One page's outcome; `error` set (and the rest empty) when only this request failed."""

    text: str = ""
    raw: str = ""
    boxes: list[Box] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length"] = "stop"
    repetition_detected: bool = False
    inference_ms: float = 0.0
    # What the page actually cost: image tokens in the prompt and the tile grid as (columns, rows)
    # (None: global view only). Engines without vision tokens leave 0 / None.
    image_tokens: int = 0
    tiles: tuple[int, int] | None = None
    error: Exception | None = None

"""Tasks, modes, prompts, limits, model ids: the one place for the prompt rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

from gpu_worker.protocol.errors import InvalidRequest

Task = Literal["markdown", "ocr", "figure", "describe", "locate"]
Mode = Literal["tiny", "small", "base", "large", "gundam"]
TASKS: tuple[str, ...] = ("markdown", "ocr", "figure", "describe", "locate")
MODES_ORDER: tuple[str, ...] = ("tiny", "small", "base", "large", "gundam")
DEFAULT_TASK = "markdown"
DEFAULT_MODE = "gundam"

GLOBAL_VIEW_PX = 1024
TILE_PX = 768
GLOBAL_VIEW_TOKENS = 256  # (1024 / 16 / 4) ** 2
TILE_TOKENS = 144  # (768 / 16 / 4) ** 2
VIEW_SEPARATOR_TOKENS = 1


@dataclass(frozen=True)
class ModePreset:
    """One vision-token budget: the 1024 px global view plus up to `max_tiles` 768 px tiles."""

    name: str
    max_tiles: int

    @property
    def min_tiles(self) -> int:
        """Fewest tiles a page larger than one tile gets (the processor's own minimum is 2)."""
        return min(2, self.max_tiles)

    @property
    def image_tokens(self) -> int:
        """Image tokens for a page larger than 768 px (the most this preset costs)."""
        return GLOBAL_VIEW_TOKENS + VIEW_SEPARATOR_TOKENS + TILE_TOKENS * self.max_tiles


MODES: dict[str, ModePreset] = {
    "tiny": ModePreset("tiny", 0),
    "small": ModePreset("small", 2),
    "base": ModePreset("base", 3),
    "large": ModePreset("large", 4),
    "gundam": ModePreset("gundam", 6),
}

TASK_PROMPTS: dict[str, str] = {
    "markdown": "<image>\n<|grounding|>Convert the document to markdown.",
    "ocr": "<image>\nFree OCR.",
    "figure": "<image>\nParse the figure.",
    "describe": "<image>\nDescribe this image in detail.",
    "locate": "<image>\nLocate <|ref|>{ref_text}<|/ref|> in the image.",
}
IMAGE_TOKEN = "<image>"

MAX_REF_TEXT_CHARS = 200
REQUEST_ID_RE = re.compile(
    r"^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,128}$"
)  # safe in an S3 key and a URL path: not . or ..
MAX_PROMPT_CHARS = 4000
MAX_MESSAGES = 32
MAX_TOKENS_LIMIT = 8192
IMAGE_MEDIA_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")
PDF_MEDIA_TYPE = "application/pdf"

# Model ids. "deepseek-ocr" is the alias that always means "the engine this service runs".
MODEL_ALIAS = "deepseek-ocr"
MODEL_ID_DEEPSEEK = "deepseek-ocr-2"
MODEL_ID_RAPIDOCR = "rapidocr"

# The model's control tokens: `<|...|>` (ASCII bar), `<｜...｜>` (full-width bar) and `<image>`.
_SPECIAL_TOKEN_RE = re.compile(r"<\|[^<>|\n]{0,64}\|>|<｜[^<>｜\n]{0,64}｜>|<image>", re.IGNORECASE)


def strip_special_tokens(text: str) -> str:
    """Remove the model's control tokens from untrusted text, until none can re-form."""
    previous = None
    while previous != text:
        previous = text
        text = _SPECIAL_TOKEN_RE.sub("", text)
    return text


def clean_ref_text(ref_text: str | None) -> str:
    """Validate and clean the reference text of `locate` (required, <= 200 chars, no control tokens)."""
    if ref_text is None or not ref_text.strip():
        raise InvalidRequest(
            "`ref_text` is required for task `locate`.", param="ref_text", code="missing_ref_text"
        )
    if len(ref_text) > MAX_REF_TEXT_CHARS:
        raise InvalidRequest(
            f"`ref_text` is longer than {MAX_REF_TEXT_CHARS} characters.",
            param="ref_text",
            code="ref_text_too_long",
        )
    cleaned = " ".join(strip_special_tokens(ref_text).split())
    if not cleaned:
        raise InvalidRequest("`ref_text` is empty once control tokens are removed.", param="ref_text")
    return cleaned


class Prompt(NamedTuple):
    """What the model is asked: the task name, its prompt text, and the cleaned `locate` reference."""

    task: str
    text: str
    ref_text: str | None = None


def build_prompt(task: str | None, ref_text: str | None = None, user_text: str | None = None) -> Prompt:
    """The model's own prompt for a task, or the user's text with one `<image>`; the one place for these rules."""
    if ref_text is not None and task != "locate":
        raise InvalidRequest("`ref_text` is only used with task `locate`.", param="ref_text")
    if task is None:
        text = strip_special_tokens(user_text or "").strip()
        if not text:
            return build_prompt(DEFAULT_TASK)
        return Prompt("custom", f"{IMAGE_TOKEN}\n{text}")
    if task not in TASK_PROMPTS:
        raise InvalidRequest(f"Unknown task {task!r}; use one of {', '.join(TASKS)}.", param="task")
    if task == "locate":
        cleaned = clean_ref_text(ref_text)
        return Prompt(task, TASK_PROMPTS[task].format(ref_text=cleaned), cleaned)
    return Prompt(task, TASK_PROMPTS[task])

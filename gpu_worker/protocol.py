"""The API contract: OpenAI chat-completions models, our `ocr` extension, errors, tasks, modes, limits.

Imported by the worker, edge_api and the web app. It must stay light: pydantic and the standard
library only (a test proves that importing it loads neither torch nor transformers).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# --------------------------------------------------------------------------------------------------
# Tasks, modes, prompts, limits
# --------------------------------------------------------------------------------------------------

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
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # safe inside an S3 key and a URL path
MAX_PROMPT_CHARS = 4000
MAX_MESSAGES = 32
MAX_TOKENS_LIMIT = 8192
IMAGE_MEDIA_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")

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


# --------------------------------------------------------------------------------------------------
# Errors: one shape everywhere, typed exceptions inside
# --------------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ServiceError(Exception):
    """An error with a status and the OpenAI error shape; the HTTP layers map it in one place."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        """The `{"error": {...}}` body."""
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequest(ServiceError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class AuthenticationFailed(ServiceError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class PermissionDenied(ServiceError):
    status, type, code = 403, "permission_error", "permission_denied"


class NotFound(ServiceError):
    status, type, code = 404, "not_found_error", "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class PayloadTooLarge(ServiceError):
    status, type, code = 413, "invalid_request_error", "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, type, code = 415, "invalid_request_error", "unsupported_media_type"


class RateLimited(ServiceError):
    status, type, code = 429, "rate_limit_error", "rate_limited"


class UpstreamError(ServiceError):
    status, type, code = 502, "api_error", "upstream_unavailable"


class NotReady(ServiceError):
    status, type, code = 503, "api_error", "not_ready"


class GatewayTimeout(ServiceError):
    status, type, code = 504, "timeout_error", "timeout"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The one error shape: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


HTTP_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    405: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error",
    422: "invalid_request_error", 429: "rate_limit_error", 504: "timeout_error",
}  # fmt: skip


def http_error_body(status: int, message: str) -> dict[str, Any]:
    """The error shape for a bare HTTP status (unknown route, wrong method, a proxy's own error page)."""
    return error_body(
        message, HTTP_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    )


def validation_error_body(errors: list[Any]) -> tuple[int, dict[str, Any]]:
    """Status and body for pydantic/FastAPI validation errors: 400 for broken JSON, else 422 naming the field."""
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return 400, error_body(
            "The request body is not valid JSON.", "invalid_request_error", None, "invalid_json"
        )
    loc = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = f"{loc or 'body'}: {first.get('msg', 'invalid value')}"
    return 422, error_body(message, "invalid_request_error", loc or None, "invalid_schema")


# --------------------------------------------------------------------------------------------------
# Image references
# --------------------------------------------------------------------------------------------------

_DATA_URL_RE = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,"
)
_S3_URL_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]+)$")


@dataclass(frozen=True)
class DataImage:
    media_type: str
    data: bytes


@dataclass(frozen=True)
class S3Image:
    bucket: str
    key: str


def decoded_size(b64_len: int) -> int:
    """Upper bound of the bytes a base64 string of this length decodes to."""
    return (b64_len * 3) // 4


def parse_image_url(url: str, *, max_bytes: int) -> DataImage | S3Image:
    """Parse a `data:image/...;base64,` or `s3://bucket/key` URL; anything else is a clear 4xx."""
    if url.startswith("data:"):
        match = _DATA_URL_RE.match(url)
        if not match or not match.group("b64"):
            raise InvalidRequest(
                "The image data URL must look like `data:image/png;base64,...`.",
                param="messages",
                code="invalid_image_url",
            )
        mime = (match.group("mime") or "").lower()
        if mime == "application/pdf":
            raise UnsupportedMediaType(
                "PDFs are not accepted yet; send page images (PNG, JPEG or WebP).", param="messages"
            )
        if mime not in IMAGE_MEDIA_TYPES:
            raise UnsupportedMediaType(
                f"Unsupported image type {mime or 'none'!r}; send PNG, JPEG or WebP.", param="messages"
            )
        payload = url[match.end() :]
        if decoded_size(len(payload)) > max_bytes:
            raise PayloadTooLarge(f"The image is larger than {max_bytes} bytes.", param="messages")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                "The image data URL is not valid base64.", param="messages", code="invalid_base64"
            ) from None
        if not data:
            raise InvalidRequest("The image is empty.", param="messages", code="empty_image")
        return DataImage(mime, data)
    if url.startswith("s3://"):
        match = _S3_URL_RE.match(url)
        if not match or ".." in match.group("key").split("/"):
            raise InvalidRequest(
                "Malformed `s3://bucket/key` image reference.", param="messages", code="invalid_image_url"
            )
        return S3Image(match.group("bucket"), match.group("key"))
    if url.startswith(("http://", "https://")):
        raise InvalidRequest(
            "Remote image URLs are not fetched; send a data URL or an `s3://` reference from /v1/uploads.",
            param="messages",
            code="invalid_image_url",
        )
    raise InvalidRequest(
        "`image_url.url` must be a `data:image/...;base64,` URL or an `s3://` upload reference.",
        param="messages",
        code="invalid_image_url",
    )


# --------------------------------------------------------------------------------------------------
# Chat-completions request (OpenAI spec, the fields we read)
# --------------------------------------------------------------------------------------------------


class _Lenient(BaseModel):
    # Unknown fields are ignored, as the OpenAI SDK may send newer ones.
    model_config = ConfigDict(extra="ignore")


class ImageURL(_Lenient):
    url: str = Field(max_length=64 * 1024 * 1024)
    detail: Literal["auto", "low", "high"] | None = None


class TextContentPart(_Lenient):
    type: Literal["text"]
    text: str


class ImageContentPart(_Lenient):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextContentPart | ImageContentPart, Field(discriminator="type")]


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Lenient):
    include_usage: bool | None = None


class ChatCompletionRequest(_Lenient):
    """`POST /v1/chat/completions` body."""

    model: str = Field(default=MODEL_ALIAS, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, max_length=256)

    # ---- ocr extensions (sent by the openai SDK through `extra_body`) ----------------------------
    task: Task | None = Field(
        default=None, description="What to do with the image; builds the model's prompt."
    )
    mode: Mode | None = Field(default=None, description="Vision-token budget preset (default gundam).")
    ref_text: str | None = Field(
        default=None,
        max_length=10_000,
        description="Text to find; required for task `locate` (<= 200 chars).",
    )

    def to_ocr_request(self) -> OcrSpec:
        """The OCR request this chat request asks for; a clear 400 when it asks for something else."""
        image_urls: list[str] = []
        user_texts: list[str] = []
        for message in self.messages:
            if isinstance(message.content, list):
                for part in message.content:
                    if isinstance(part, ImageContentPart):
                        if message.role != "user":
                            raise InvalidRequest(
                                "Images are accepted in user messages only.", param="messages"
                            )
                        image_urls.append(part.image_url.url)
                    elif message.role == "user":
                        user_texts.append(part.text)
            elif isinstance(message.content, str) and message.role == "user":
                user_texts.append(message.content)
        if len(image_urls) != 1:
            raise InvalidRequest(
                f"Send exactly one image as an `image_url` part (got {len(image_urls)}).",
                param="messages",
                code="image_count",
            )
        user_text = "\n".join(t for t in user_texts if t.strip())
        if len(user_text) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"The text prompt is longer than {MAX_PROMPT_CHARS} characters.", param="messages"
            )
        prompt = build_prompt(self.task, self.ref_text, user_text)
        return OcrSpec(
            task=prompt.task,
            mode=self.mode or DEFAULT_MODE,
            prompt=prompt.text,
            image_url=image_urls[0],
            ref_text=prompt.ref_text,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature or 0.0,
            stream=bool(self.stream),
            include_usage=bool(self.stream_options and self.stream_options.include_usage),
        )


@dataclass(frozen=True)
class OcrSpec:
    """What a chat request asks the OCR service to do, before the image is read."""

    task: str
    mode: str
    prompt: str
    image_url: str
    ref_text: str | None
    max_tokens: int | None
    temperature: float
    stream: bool = False
    include_usage: bool = False


# --------------------------------------------------------------------------------------------------
# Response (OpenAI spec) + the `ocr` extension
# --------------------------------------------------------------------------------------------------


class Box(BaseModel):
    label: str
    bbox: list[int] = Field(description="[x1, y1, x2, y2] in pixels of the original image.")


class ImageSize(BaseModel):
    width: int
    height: int


class Link(BaseModel):
    key: str = Field(description="Object key in the results bucket.")
    url: str | None = Field(description="Presigned GET URL (None when it could not be signed).")
    expires_at: int | None = Field(description="Unix time the URL expires.")


class Timings(BaseModel):
    queue: float = 0.0
    inference: float = 0.0
    total: float = 0.0


class OcrExtension(BaseModel):
    """Our extension object on every response: what ran, the boxes, the stored results."""

    request_id: str
    task: str
    mode: str
    engine: str
    image: ImageSize
    boxes: list[Box] = Field(default_factory=list)
    raw: str = Field(description="The model's output with grounding tags kept.")
    repetition_detected: bool = False
    annotated_image: Link | None = None
    result: Link | None = None
    warnings: list[str] = Field(default_factory=list)
    timings_ms: Timings = Field(default_factory=Timings)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage
    ocr: OcrExtension


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    ocr: OcrExtension | None = None


# --------------------------------------------------------------------------------------------------
# /v1/models
# --------------------------------------------------------------------------------------------------


class ModePresetCard(BaseModel):
    name: str
    max_tiles: int
    image_tokens: int


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "deepseek-ocr-service"
    engine: str
    tasks: list[str]
    modes: list[ModePresetCard]
    default_mode: str = DEFAULT_MODE


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def mode_cards() -> list[ModePresetCard]:
    """Every preset with its token budget, smallest first."""
    return [
        ModePresetCard(name=m.name, max_tiles=m.max_tiles, image_tokens=m.image_tokens)
        for m in MODES.values()
    ]


# --------------------------------------------------------------------------------------------------
# Settings: each deployable reads its own settings object once, the same way
# --------------------------------------------------------------------------------------------------

SettingsT = TypeVar("SettingsT", bound=BaseModel)


def read_settings(cls: type[SettingsT], label: str, **overrides: Any) -> SettingsT:
    """Build a settings object from the environment, exiting with one clear line per bad value."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"invalid {label} settings: {problems}") from None

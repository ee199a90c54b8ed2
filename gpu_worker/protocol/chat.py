"""Chat completions: the OpenAI request (the fields we read), the response, and our `ocr` extension."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpu_worker.protocol.errors import InvalidRequest
from gpu_worker.protocol.tasks import (
    DEFAULT_MODE,
    MAX_MESSAGES,
    MAX_PROMPT_CHARS,
    MAX_TOKENS_LIMIT,
    MODEL_ALIAS,
    PDF_MEDIA_TYPE,
    Mode,
    Task,
    build_prompt,
)


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


class FileData(_Lenient):
    file_data: str | None = Field(
        default=None,
        max_length=64 * 1024 * 1024,
        description="`data:application/pdf;base64,...` (or bare base64).",
    )
    file_id: str | None = Field(default=None, max_length=1024)
    filename: str | None = Field(default=None, max_length=1024)


class FileContentPart(_Lenient):
    """OpenAI's `file` part: how the openai SDK sends a PDF inline."""

    type: Literal["file"]
    file: FileData

    def data_url(self) -> str:
        """The file as a data URL (bare base64 is taken as a PDF); a file id is a clear 400."""
        data = self.file.file_data
        if not data:
            raise InvalidRequest(
                "`file.file_id` is not supported; send the PDF inline as `file.file_data` "
                "(`data:application/pdf;base64,...`), or upload it with POST /v1/uploads.",
                param="messages",
                code="unsupported_file_reference",
            )
        return data if data.startswith("data:") else f"data:{PDF_MEDIA_TYPE};base64,{data}"


ContentPart = Annotated[TextContentPart | ImageContentPart | FileContentPart, Field(discriminator="type")]


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
                    if isinstance(part, ImageContentPart | FileContentPart):
                        if message.role != "user":
                            raise InvalidRequest(
                                "Images and files are accepted in user messages only.", param="messages"
                            )
                        image_urls.append(
                            part.image_url.url if isinstance(part, ImageContentPart) else part.data_url()
                        )
                    elif message.role == "user":
                        user_texts.append(part.text)
            elif isinstance(message.content, str) and message.role == "user":
                user_texts.append(message.content)
        if len(image_urls) != 1:
            raise InvalidRequest(
                "Send exactly one image (an `image_url` part) or one PDF (a `file` part) "
                f"(got {len(image_urls)}).",
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
    text: str | None = Field(
        None,
        description="The text recognised in this box; for `locate`, the text found there (RapidOCR: the "
        "matching line; DeepSeek: the reference it names). None when the box holds no text (an image).",
    )


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


class PageOcr(BaseModel):
    """One page of a document: what `ocr` says for a single image, per page."""

    page: int = Field(description="Page number in the document, from 1.")
    image: ImageSize
    boxes: list[Box] = Field(default_factory=list)
    raw: str = Field(description="The model's output for this page with grounding tags kept.")
    text: str
    repetition_detected: bool = False
    image_tokens: int = Field(default=0, description="Image tokens this page actually cost (0: no vision).")
    tiles: tuple[int, int] | None = Field(default=None, description="Tile grid [columns, rows]; null: none.")
    annotated_image: Link | None = None


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
    image_tokens: int = Field(
        default=0,
        description="Image tokens the page actually cost (the mode is a ceiling: the processor picks the tile "
        "grid nearest the page's shape among those the mode allows); 0 for engines without vision tokens.",
    )
    tiles: tuple[int, int] | None = Field(
        default=None,
        description="The 768 px tile grid as [columns, rows]; null when only the global view was used.",
    )
    annotated_image: Link | None = None
    result: Link | None = None
    warnings: list[str] = Field(default_factory=list)
    timings_ms: Timings = Field(default_factory=Timings)
    pages: list[PageOcr] | None = Field(
        default=None,
        exclude_if=lambda pages: pages is None,  # a single image keeps its old response: no `pages` key
        description="A PDF's pages in order (absent for a single image); then `image` is the first page's "
        "size, `boxes` is empty and `raw` joins the pages' raw output with `<!-- page N -->` lines.",
    )


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

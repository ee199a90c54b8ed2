"""The one page: upload a page image, choose preset and task, read the result."""

from __future__ import annotations

from typing import Any

import reflex as rx

from gpu_worker.protocol import MODES, TASKS
from ocr_web.components.panels import error_callout, intro, options_form, result_view, upload_zone
from ocr_web.edge import OcrFailed, run_ocr, sniff_image
from ocr_web.sanitize import safe_markdown
from ocr_web.settings import get_settings

TASK_LABELS = {
    "markdown": "Markdown (layout, tables, boxes)",
    "ocr": "Plain text",
    "figure": "Parse a figure or chart",
    "describe": "Describe the image",
    "locate": "Locate a text (boxes)",
}


class OcrState(rx.State):
    """One person's page, options and result."""

    file_name: str = ""
    file_size: int = 0
    _image: bytes = b""
    task: str = "markdown"
    mode: str = "gundam"
    ref_text: str = ""
    running: bool = False
    error: str = ""
    text: str = ""
    rendered: str = ""
    raw: str = ""
    engine: str = ""
    request_id: str = ""
    boxes: list[dict[str, Any]] = []
    annotated_url: str = ""
    result_url: str = ""
    timings: str = ""
    notes: list[str] = []
    show_raw: bool = False

    @rx.var
    def has_result(self) -> bool:
        """A result is on screen."""
        return bool(self.request_id)

    @rx.var
    def needs_ref_text(self) -> bool:
        """The reference text field only shows for `locate`."""
        return self.task == "locate"

    @rx.var
    def file_label(self) -> str:
        """The chosen file, for the person."""
        return f"{self.file_name} ({self.file_size / 1024:.0f} KB)" if self.file_name else ""

    @rx.event
    async def take_upload(self, files: list[rx.UploadFile]) -> None:
        """Keep the dropped image in the backend (never sent back to the browser)."""
        self.error = ""
        if not files:
            return
        upload = files[0]
        data = await upload.read()
        limit = get_settings().upload_max_bytes
        if sniff_image(data) is None:
            self._forget_file()
            self.error = f"{upload.name or 'This file'} is not a PNG, JPEG or WebP image."
            return
        if len(data) > limit:
            self._forget_file()
            self.error = f"The image is larger than {limit // 2**20} MB."
            return
        self._image, self.file_name, self.file_size = data, upload.name or "page", len(data)

    def _forget_file(self) -> None:
        self._image, self.file_name, self.file_size = b"", "", 0

    @rx.event
    def set_task(self, value: str) -> None:
        """Choose the task."""
        if value in TASKS:
            self.task = value

    @rx.event
    def set_mode(self, value: str) -> None:
        """Choose the size preset."""
        if value in MODES:
            self.mode = value

    @rx.event
    def set_ref_text(self, value: str) -> None:
        """The text to locate."""
        self.ref_text = value[:200]

    @rx.event
    def toggle_raw(self) -> None:
        """Rendered markdown or the raw text."""
        self.show_raw = not self.show_raw

    @rx.event
    def copy_text(self) -> Any:
        """Copy the recognised text."""
        return [rx.set_clipboard(self.text), rx.toast.success("Copied")]

    @rx.event(background=True)
    async def submit(self) -> None:
        """Run the OCR through the edge; the button stays disabled meanwhile."""
        async with self:
            if self.running:
                return
            if not self._image:
                self.error = "Choose a page image first."
                return
            if self.task == "locate" and not self.ref_text.strip():
                self.error = "Type the text to locate."
                return
            self.running, self.error, self.request_id = True, "", ""
            image, task, mode, ref_text = self._image, self.task, self.mode, self.ref_text.strip()
        try:
            reply = await run_ocr(get_settings(), image, task, mode, ref_text or None)
        except OcrFailed as exc:
            async with self:
                self.running, self.error = False, str(exc)
            return
        async with self:
            self._show(reply)
            self.running = False

    def _show(self, reply: dict[str, Any]) -> None:
        ocr = reply.get("ocr") or {}
        choice = (reply.get("choices") or [{}])[0]
        self.text = (choice.get("message") or {}).get("content") or ""
        self.rendered = safe_markdown(self.text)
        self.raw = ocr.get("raw") or ""
        self.engine = f"{ocr.get('engine', '?')} ({reply.get('model', '?')})"
        self.request_id = ocr.get("request_id") or reply.get("id") or "?"
        self.boxes = [
            {"label": b["label"], "bbox": ", ".join(str(v) for v in b["bbox"])} for b in ocr.get("boxes", [])
        ]
        self.annotated_url = (ocr.get("annotated_image") or {}).get("url") or ""
        self.result_url = (ocr.get("result") or {}).get("url") or ""
        t = ocr.get("timings_ms") or {}
        self.timings = f"queue {t.get('queue', 0):.0f} ms, inference {t.get('inference', 0):.0f} ms, total {t.get('total', 0):.0f} ms"
        self.notes = list(ocr.get("warnings") or [])
        if choice.get("finish_reason") == "length":
            self.notes.append("The output hit the token limit and may be cut short.")
        if ocr.get("repetition_detected"):
            self.notes.append("The model started repeating itself; the end of the text may be unreliable.")


def index() -> rx.Component:
    """The page."""
    return rx.container(
        rx.vstack(
            intro(),
            rx.grid(
                rx.vstack(
                    upload_zone(OcrState, get_settings().upload_max_bytes),
                    options_form(OcrState, TASK_LABELS),
                    error_callout(OcrState),
                    width="100%",
                    spacing="4",
                ),
                result_view(OcrState),
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="6",
                width="100%",
            ),
            spacing="5",
            width="100%",
        ),
        size="4",
        padding_y="6",
    )

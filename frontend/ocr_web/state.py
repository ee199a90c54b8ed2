"""The page's state: the engine's capabilities, the batch of files, the shown result and this browser's history."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from typing import Any

import reflex as rx

from gpu_worker.protocol import TASKS
from ocr_web import downloads, history
from ocr_web.batch import job_progress, new_item, updated
from ocr_web.capabilities import capabilities, task_note
from ocr_web.edge import PDF, OcrFailed, get_json, run_ocr, sniff_file
from ocr_web.jobs import job_reply, start_job, wait_job
from ocr_web.results import view_of
from ocr_web.settings import get_settings

MAX_FILES = 10
PREVIEW_MAX_BYTES = 3 * 2**20  # larger images are read, but not sent back to the browser for a preview


class OcrState(rx.State):
    """One person's files, options and results."""

    # What the engine can do (from /v1/models through the edge).
    engine_name: str = ""
    cpu_note: str = ""
    task_options: list[dict[str, Any]] = []
    mode_options: list[dict[str, Any]] = []
    presets_matter: bool = True
    free_prompts: bool = False
    streams: bool = False
    _caps: dict[str, Any] = {}
    # Inputs.
    items: list[dict[str, Any]] = []
    _files: dict[str, bytes] = {}
    _previews: dict[str, str] = {}
    preview_url: str = ""
    task: str = "markdown"
    mode: str = "gundam"
    ref_text: str = ""
    prompt: str = ""
    # Progress.
    running: bool = False
    finished_runs: int = 0  # counts finished Read presses (the page and its tests wait on it)
    elapsed: str = ""
    partial: str = ""
    error: str = ""
    # The result on screen.
    current: str = ""
    _replies: dict[str, dict[str, Any]] = {}
    request_id: str = ""
    result_name: str = ""
    plain: bool = False
    engine: str = ""
    timings: str = ""
    notes: list[str] = []
    not_found: str = ""
    result_url: str = ""
    pages: list[dict[str, Any]] = []
    page_index: int = 0
    active_box: int = -1
    show_raw: bool = False
    history_json: str = rx.LocalStorage("[]", name="ocr-history", sync=True)

    # ---- computed --------------------------------------------------------------------------------

    @rx.var
    def has_result(self) -> bool:
        """A result is on screen."""
        return bool(self.request_id)

    @rx.var
    def file_label(self) -> str:
        """The chosen file(s), for the person."""
        if len(self.items) == 1:
            return f"{self.items[0]['name']} ({self.items[0]['size']})"
        return f"{len(self.items)} files" if self.items else ""

    @rx.var
    def needs_ref_text(self) -> bool:
        """The reference text field only shows for `locate`."""
        return self.task == "locate"

    @rx.var
    def needs_prompt(self) -> bool:
        """The prompt field only shows for a custom prompt."""
        return self.task == "custom"

    @rx.var
    def task_note(self) -> str:
        """Why the chosen task is off here, or what it does."""
        if self.task == "custom":
            return "Your own instruction to the model (DeepSeek-OCR only; RapidOCR takes no prompts)."
        return task_note(self.task, self._caps) if self._caps else ""

    @rx.var
    def page(self) -> dict[str, Any]:
        """The page of the result on screen."""
        return self.pages[self.page_index] if 0 <= self.page_index < len(self.pages) else {}

    @rx.var
    def boxes(self) -> list[dict[str, Any]]:
        """The shown page's boxes with their text."""
        page = self.pages[self.page_index] if 0 <= self.page_index < len(self.pages) else {}
        return list(page.get("boxes") or [])

    @rx.var
    def boxes_have_text(self) -> bool:
        """The engine said which text each box holds (DeepSeek's grounded output does; RapidOCR's does not)."""
        page = self.pages[self.page_index] if 0 <= self.page_index < len(self.pages) else {}
        return any(b.get("text") for b in page.get("boxes") or [])

    @rx.var
    def base_image(self) -> str:
        """The image the boxes are drawn over: the chosen file's preview, else the annotated page."""
        if self.preview_url and len(self.pages) == 1:
            return self.preview_url
        page = self.pages[self.page_index] if 0 <= self.page_index < len(self.pages) else {}
        return str(page.get("annotated_url") or "")

    @rx.var
    def history(self) -> list[dict[str, Any]]:
        """This browser's recent results and jobs."""
        return history.entries(self.history_json)

    @rx.var
    def many_pages(self) -> bool:
        """The result has several pages (a document)."""
        return len(self.pages) > 1

    # ---- engine ----------------------------------------------------------------------------------

    @rx.event(background=True)
    async def load_engine(self) -> None:
        """Ask the edge what this engine can do; without an answer, offer everything and say so."""
        try:
            models = await get_json(get_settings(), "/v1/models")
        except OcrFailed:
            models = None
        caps = capabilities(models)
        async with self:
            self._caps = caps
            self.engine_name = caps["engine_name"] if caps["engine"] else ""
            self.cpu_note = caps["cpu_note"]
            self.task_options = caps["task_options"]
            self.mode_options = caps["modes"]
            self.presets_matter = caps["presets_matter"]
            self.free_prompts = "custom" in caps["tasks"]
            self.streams = caps["streams"]
            if self.task not in caps["tasks"]:
                self.task = "markdown"

    # ---- inputs ----------------------------------------------------------------------------------

    @rx.event
    async def take_upload(self, files: list[rx.UploadFile]) -> None:
        """Keep the dropped files in the backend (never sent back); a new drop clears the last result."""
        self.error = ""
        if not files:
            return
        self._clear_result()
        self.items, self._files, self._replies, self._previews = [], {}, {}, {}
        refused = []
        limit = get_settings().upload_max_bytes
        for upload in files[:MAX_FILES]:
            data = await upload.read()
            name = upload.name or "page"
            media_type = sniff_file(data)
            if media_type is None:
                refused.append(f"{name} is not a PNG, JPEG or WebP image, or a PDF.")
                continue
            if len(data) > limit:
                refused.append(f"{name} is larger than {limit // 2**20} MB.")
                continue
            item_id = uuid.uuid4().hex[:12]
            self._files[item_id] = data
            if media_type != PDF and len(data) <= PREVIEW_MAX_BYTES:
                self._previews[item_id] = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
            self.items.append(new_item(item_id, name, len(data), media_type == PDF))
        if len(files) > MAX_FILES:
            refused.append(f"Only the first {MAX_FILES} files are taken.")
        self.error = " ".join(refused)
        # The chosen image shows before reading, so a wrong file is noticed before it is sent.
        self.preview_url = self._previews.get(self.items[0]["id"], "") if self.items else ""

    def _clear_result(self) -> None:
        self.request_id, self.pages, self.page_index, self.active_box = "", [], 0, -1
        self.notes, self.not_found, self.partial, self.elapsed, self.current = [], "", "", "", ""

    @rx.event
    def set_task(self, value: str) -> None:
        """Choose the task (only one this engine has)."""
        allowed = self._caps.get("tasks") or TASKS
        if value in allowed or value == "custom" and self.free_prompts:
            self.task = value

    @rx.event
    def set_mode(self, value: str) -> None:
        """Choose the size preset."""
        if value in {m["name"] for m in self.mode_options} or not self.mode_options:
            self.mode = value

    @rx.event
    def set_ref_text(self, value: str) -> None:
        """The text to locate."""
        self.ref_text = value[:200]

    @rx.event
    def set_prompt(self, value: str) -> None:
        """A custom prompt."""
        self.prompt = value[:4000]

    # ---- the shown result ------------------------------------------------------------------------

    @rx.event
    def toggle_raw(self) -> None:
        """Rendered text or the raw output."""
        self.show_raw = not self.show_raw

    @rx.event
    def set_active(self, index: int) -> None:
        """Highlight one box (its row and its outline on the image); -1 for none."""
        self.active_box = index

    @rx.event
    def show_page(self, index: int) -> None:
        """Show one page of a document."""
        if 0 <= index < len(self.pages):
            self.page_index, self.active_box = index, -1

    @rx.event
    def copy_text(self) -> Any:
        """Copy the recognised text."""
        return [rx.set_clipboard(str(self.page.get("text") or "")), rx.toast.success("Copied")]

    @rx.event
    def open_item(self, item_id: str) -> None:
        """Show a finished file of the batch."""
        reply = self._replies.get(item_id)
        if reply is not None:
            self._show(item_id, reply)

    def _show(self, item_id: str, reply: dict[str, Any]) -> None:
        ceilings = {m["name"]: int(m["tokens"]) for m in self._caps.get("modes") or []}
        view = view_of(reply, ceilings, self.ref_text.strip())
        item = next((i for i in self.items if i["id"] == item_id), None)
        self.current, self.result_name = item_id, item["name"] if item else item_id
        self.request_id, self.plain, self.engine = view["request_id"], view["plain"], view["engine"]
        self.timings, self.notes, self.not_found = view["timings"], view["notes"], view["not_found"]
        self.result_url, self.pages, self.page_index, self.active_box = (
            view["result_url"],
            view["pages"],
            0,
            -1,
        )
        self.preview_url = self._previews.get(item_id, "")

    @rx.event
    async def download(self, kind: str) -> Any:
        """Build one download in the backend and hand the browser the bytes."""
        reply = self._replies.get(self.current)
        if reply is None or kind not in downloads.KINDS:
            return None
        try:
            filename, data = await downloads.build(get_settings(), kind, reply, self.result_name)
        except (OcrFailed, ValueError) as exc:
            self.error = str(exc)
            return None
        return rx.download(data=data, filename=filename)

    # ---- history ---------------------------------------------------------------------------------

    @rx.event(background=True)
    async def reopen(self, entry_id: str) -> None:
        """Fetch a past result (or job) again, with fresh links, and show it."""
        async with self:
            entry = next((e for e in history.entries(self.history_json) if e["id"] == entry_id), None)
            if entry is None or self.running:
                return
            self.error = ""
        settings = get_settings()
        try:
            if entry["kind"] == "job":
                reply = await job_reply(settings, await get_json(settings, f"/v1/jobs/{entry_id}"))
            else:
                reply = await get_json(settings, f"/v1/results/{entry_id}")
        except OcrFailed as exc:
            async with self:
                self.error = f"{entry['name']} could not be reopened: {exc}"
            return
        async with self:
            self._clear_result()
            self.items = [{"id": entry_id, "name": entry["name"], "size": "", "kind": "pdf" if entry["pages"] > 1 else "image",
                           "status": "done", "status_label": "done (reopened)", "progress": 100, "pages": "", "error": ""}]  # fmt: skip
            self._files, self._previews = {}, {}
            self._replies = {entry_id: reply}
            self._show(entry_id, reply)
            self.history_json = history.added(self.history_json, entry_id, entry["kind"], entry["name"],
                                              entry["task"], entry["pages"])  # fmt: skip

    @rx.event
    def clear_history(self) -> None:
        """Forget this browser's list (the results stay in storage until they expire)."""
        self.history_json = "[]"

    # ---- reading ---------------------------------------------------------------------------------

    @rx.event(background=True)
    async def submit(self) -> Any:
        """Read every file of the batch in turn; the first one done is shown at once."""
        async with self:
            if self.running:
                return
            if not self.items:
                self.error = "Choose a page image or a PDF first."
                return
            if self.task == "locate" and not self.ref_text.strip():
                self.error = "Type the text to locate."
                return
            if self.task == "custom" and not self.prompt.strip():
                self.error = "Type the prompt for the model."
                return
            self.running, self.error = True, ""
            self._clear_result()
            todo = [i["id"] for i in self.items]
            self._replies = {}
            options = (self.task, self.mode, self.ref_text.strip() or None, self.prompt.strip() or None,
                       self.streams)  # fmt: skip
        shown = False
        for item_id in todo:
            ok = await self._read_one(item_id, *options)
            if ok and not shown:
                shown = True
                async with self:
                    self._show(item_id, self._replies[item_id])
                # On a phone the result sits below the form: bring it into view.
                yield rx.call_script(
                    "window.innerWidth < 768 && document.getElementById('result')?.scrollIntoView()"
                )
        async with self:
            self.running, self.partial = False, ""
            self.finished_runs += 1

    async def _read_one(self, item_id: str, task: str, mode: str, ref_text: str | None, prompt: str | None,
                        stream: bool) -> bool:  # fmt: skip
        """Read one file (inline, or as a job when it has too many pages), keeping the state up to date."""
        async with self:
            data = self._files.get(item_id, b"")
            item = next(i for i in self.items if i["id"] == item_id)
            name = item["name"]
            self._set_item(item_id, status="reading")
            self.partial = ""
        settings = get_settings()
        started = time.monotonic()
        latest = {"text": ""}  # the streamed text so far, copied into the state twice a second

        def on_text(text: str) -> None:
            latest["text"] = text

        reading = asyncio.ensure_future(
            run_ocr(
                settings, data, task, mode, ref_text, prompt=prompt, name=name, on_text=on_text, stream=stream
            )
        )
        kind = "result"
        try:
            while not reading.done():
                await asyncio.wait({reading}, timeout=0.5)
                async with self:
                    self.elapsed = f"{time.monotonic() - started:.0f} s"
                    self.partial = latest["text"]
            try:
                reply = reading.result()
            except OcrFailed as exc:
                if exc.code != "too_many_pages":
                    raise
                kind = "job"
                reply = await self._read_as_job(item_id, data, name, task, mode, ref_text)
        except OcrFailed as exc:
            async with self:
                self._set_item(item_id, status="failed", error=str(exc))
                if len(self.items) == 1:
                    self.error = str(exc)
            return False
        pages = len((reply.get("ocr") or {}).get("pages") or [1])
        async with self:
            self._replies[item_id] = reply
            self._set_item(item_id, status="done", progress=100)
            entry_id = str(reply.get("id") or (reply.get("ocr") or {}).get("request_id") or item_id)
            self.history_json = history.added(self.history_json, entry_id, kind, name, task, pages)
        return True

    async def _read_as_job(self, item_id: str, data: bytes, name: str, task: str, mode: str,
                           ref_text: str | None) -> dict[str, Any]:  # fmt: skip
        settings = get_settings()
        job = await start_job(settings, data, name, task, mode, ref_text)
        async with self:
            self._set_item(item_id, status="job", job_id=str(job.get("id")))

        started = time.monotonic()

        async def progress(record: dict[str, Any]) -> None:
            async with self:
                self.elapsed = f"{time.monotonic() - started:.0f} s (job {record.get('status')})"
                self._set_item(item_id, **job_progress(record))

        final = await wait_job(settings, str(job["id"]), progress)
        return await job_reply(settings, final)

    def _set_item(self, item_id: str, **changes: Any) -> None:
        self.items = updated(self.items, item_id, **changes)

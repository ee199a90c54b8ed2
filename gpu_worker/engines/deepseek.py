"""DeepSeek-OCR-2 through transformers' native classes: batched generate, streaming, repetition guard."""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from gpu_worker.engines.base import Engine, EngineLoadError
from gpu_worker.engines.repetition import TABLE_CELL_TOKENS, NGramRepeatBlocker, tail_repeats
from gpu_worker.grounding import boxes_as_text, parse_grounded
from gpu_worker.protocol import MODEL_ID_DEEPSEEK, MODES, TASKS, PayloadTooLarge, ServiceError
from gpu_worker.types import OcrRequest, OcrResult, TokenCallback

log = logging.getLogger(__name__)
NO_TILES = 10**9  # a tile size no page exceeds: the processor then takes the global view only


def mode_kwargs(mode: str) -> dict[str, int]:
    """Processor arguments that apply a mode preset."""
    preset = MODES[mode]
    if preset.max_tiles == 0:
        return {"tile_size": NO_TILES}
    return {"min_patches": preset.min_tiles, "max_patches": preset.max_tiles}


def text_attention() -> str:
    """flash_attention_2 for the text model when flash-attn imports, else sdpa."""
    return "flash_attention_2" if importlib.util.find_spec("flash_attn") is not None else "sdpa"


class RowCap(StoppingCriteria):
    """Stops each row at its own token cap (requests in one batch may ask for different caps)."""

    def __init__(self, prompt_length: int, caps: list[int]):
        self.prompt_length = prompt_length
        self.caps = torch.tensor(caps)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.prompt_length
        return (self.caps.to(input_ids.device) <= generated).to(torch.bool)  # type: ignore[return-value]


class RowStreamer(BaseStreamer):
    """Feeds `on_token(row, piece)` for every row of a batch (TextIteratorStreamer serves one row)."""

    def __init__(self, tokenizer: Any, rows: list[int], on_token: TokenCallback, stop_ids: set[int]):
        self.tokenizer = tokenizer
        self.rows = rows
        self.on_token = on_token
        self.stop_ids = stop_ids
        self.cache: list[list[int]] = [[] for _ in rows]
        self.printed = [0] * len(rows)
        self.done = [False] * len(rows)
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        """Receive one new token per row (the first call carries the prompt, which is skipped)."""
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for index, token in enumerate(value.reshape(-1).tolist()):
            if self.done[index]:
                continue
            if token in self.stop_ids:
                self.done[index] = True
                self._flush(index, final=True)
                continue
            self.cache[index].append(token)
            self._flush(index, final=False)

    def end(self) -> None:
        """Flush what each row still holds."""
        for index in range(len(self.rows)):
            self._flush(index, final=True)

    def _flush(self, index: int, final: bool) -> None:
        text = self.tokenizer.decode(self.cache[index], skip_special_tokens=False)
        if text.endswith("\ufffd") and not final:
            return  # half of a multi-byte character: wait for the rest
        piece = text[self.printed[index] :]
        if piece:
            self.on_token(self.rows[index], piece)
        if text.endswith("\n") or final:
            self.cache[index], self.printed[index] = [], 0
        else:
            self.printed[index] = len(text)


@dataclass
class Prepared:
    input_ids: torch.Tensor  # (1, length)
    pixel_values: torch.Tensor  # (1, 3, 1024, 1024)
    pixel_values_local: torch.Tensor | None  # (tiles, 3, 768, 768)
    tiles: int


class DeepseekEngine(Engine):
    """DeepSeek-OCR-2 from a hub id or a local folder; bf16 on CUDA, float32 on CPU."""

    name = "deepseek"
    model_id = MODEL_ID_DEEPSEEK
    tasks = (*TASKS, "custom")

    def __init__(
        self,
        model_ref: str,
        *,
        max_new_tokens: int = 4096,
        max_time_s: float | None = None,
        repetition_window: int = 90,
        repetition_ngram: int = 30,
        device: str | None = None,
    ) -> None:
        self.model_ref = model_ref
        self.max_new_tokens = max_new_tokens
        self.max_time_s = max_time_s
        self.repetition_window = repetition_window
        self.repetition_ngram = min(repetition_ngram, repetition_window)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self._lock = threading.Lock()
        self.processor: Any = None
        self.model: Any = None
        self.stop_ids: set[int] = set()
        self.whitelist: set[int] = set()

    # ---- loading ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Load processor and weights once, then run one short generate to prove the model works."""
        with self._lock:
            if self.model is not None:
                return
            attention: str | dict[str, str] = "sdpa"
            if self.device.startswith("cuda"):
                # The vision encoders support sdpa only; the text model takes flash attention when present.
                attention = {"": "sdpa", "vision_config": "sdpa", "text_config": text_attention()}
            try:
                self.processor = AutoProcessor.from_pretrained(self.model_ref)
                # Straight onto the GPU (no CPU copy of 6.8 GB first) where accelerate is installed.
                placement = {"device_map": self.device} if self.device.startswith("cuda") else {}
                model: Any = AutoModelForImageTextToText.from_pretrained(
                    self.model_ref, dtype=self.dtype, attn_implementation=attention, **placement
                )
                self.model = model.to(self.device).eval()
            except torch.OutOfMemoryError as exc:
                raise EngineLoadError(
                    f"Not enough memory on {self.device} to load {self.model_ref}."
                ) from exc
            except OSError as exc:
                raise EngineLoadError(
                    f"Could not load DeepSeek-OCR-2 from {self.model_ref!r}: {exc}. Without network access, set "
                    "DEEPSEEK_MODEL to a local folder holding the weights."
                ) from exc
            except Exception as exc:
                raise EngineLoadError(
                    f"Could not load DeepSeek-OCR-2 from {self.model_ref!r}: {exc}"
                ) from exc
            tokenizer = self.processor.tokenizer
            self.stop_ids = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}
            vocab = tokenizer.get_vocab()
            self.whitelist = {vocab[t] for t in TABLE_CELL_TOKENS if t in vocab}
            log.info("deepseek loaded from %s on %s (%s)", self.model_ref, self.device, self.dtype)
        self._warm_up()

    def _warm_up(self) -> None:
        from PIL import Image

        probe = OcrRequest("warmup", Image.new("RGB", (64, 64), "white"), "ocr", "tiny", "<image>\nFree OCR.",
                           max_new_tokens=1)  # fmt: skip
        result = self.run([probe])[0]
        if result.error is not None:
            raise EngineLoadError(f"DeepSeek-OCR-2 loaded but failed its first run: {result.error}")

    # ---- running ----------------------------------------------------------------------------------

    def run(self, batch: list[OcrRequest], on_token: TokenCallback | None = None) -> list[OcrResult]:
        """One batched generate per temperature group; per-request failures stay per request."""
        if self.model is None:
            raise EngineLoadError("deepseek engine used before load()")
        results: list[OcrResult | None] = [None] * len(batch)
        prepared: dict[int, Prepared] = {}
        for row, request in enumerate(batch):
            try:
                self.check_task(request.task)
                prepared[row] = self._prepare(request)
            except Exception as exc:
                results[row] = OcrResult(error=exc)
        groups: dict[float, list[int]] = {}
        for row in prepared:
            groups.setdefault(batch[row].temperature, []).append(row)
        with self._lock, torch.inference_mode():
            for rows in groups.values():
                for row, result in self._generate_splitting(batch, prepared, rows, on_token).items():
                    results[row] = result
        return [r if r is not None else OcrResult(error=ServiceError("no result")) for r in results]

    def _prepare(self, request: OcrRequest) -> Prepared:
        features = self.processor(
            images=request.image, text=request.prompt, return_tensors="pt", **mode_kwargs(request.mode)
        )
        local = features.get("pixel_values_local")
        return Prepared(
            input_ids=features["input_ids"],
            pixel_values=features["pixel_values"],
            pixel_values_local=local,
            tiles=int(features["num_local_patches"][0]),
        )

    def _generate_splitting(
        self,
        batch: list[OcrRequest],
        prepared: dict[int, Prepared],
        rows: list[int],
        on_token: TokenCallback | None,
    ) -> dict[int, OcrResult]:
        """Generate; on CUDA out-of-memory retry in halves, and fail alone a page that never fits."""
        try:
            return self._generate(batch, prepared, rows, on_token)
        except torch.OutOfMemoryError:
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
            if len(rows) == 1:
                request = batch[rows[0]]
                log.warning("out of memory on a single page (request %s)", request.request_id)
                error = PayloadTooLarge(
                    f"The page does not fit in GPU memory at mode {request.mode!r}; try a smaller mode.",
                    param="mode",
                    code="out_of_memory",
                )
                return {rows[0]: OcrResult(error=error)}
            half = len(rows) // 2
            log.warning("out of memory on a batch of %d: retrying in halves", len(rows))
            results = self._generate_splitting(batch, prepared, rows[:half], on_token)
            results.update(self._generate_splitting(batch, prepared, rows[half:], on_token))
            return results

    def _collate(self, items: list[Prepared]) -> dict[str, Any]:
        pad_id = self.processor.tokenizer.pad_token_id
        length = max(item.input_ids.shape[1] for item in items)
        input_ids = torch.full((len(items), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), length), dtype=torch.long)
        for index, item in enumerate(items):
            size = item.input_ids.shape[1]
            input_ids[index, length - size :] = item.input_ids[0]  # left padding
            attention_mask[index, length - size :] = 1
        inputs: dict[str, Any] = {
            "input_ids": input_ids.to(self.device),
            "attention_mask": attention_mask.to(self.device),
            "pixel_values": torch.cat([i.pixel_values for i in items]).to(self.device, self.dtype),
            "num_local_patches": [item.tiles for item in items],
        }
        locals_ = [item.pixel_values_local for item in items if item.pixel_values_local is not None]
        if locals_:
            inputs["pixel_values_local"] = torch.cat(locals_).to(self.device, self.dtype)
        return inputs

    def _generate(
        self,
        batch: list[OcrRequest],
        prepared: dict[int, Prepared],
        rows: list[int],
        on_token: TokenCallback | None,
    ) -> dict[int, OcrResult]:
        started = time.perf_counter()
        items = [prepared[row] for row in rows]
        inputs = self._collate(items)
        prompt_length = inputs["input_ids"].shape[1]
        caps = [min(batch[row].max_new_tokens or self.max_new_tokens, self.max_new_tokens) for row in rows]
        blocker = NGramRepeatBlocker(
            prompt_length, self.repetition_window, self.repetition_ngram, self.whitelist
        )
        tokenizer = self.processor.tokenizer
        temperature = batch[rows[0]].temperature
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
        output = self.model.generate(
            **inputs,
            **sampling,
            max_new_tokens=max(caps),
            max_time=self.max_time_s,
            logits_processor=LogitsProcessorList([blocker]),
            stopping_criteria=StoppingCriteriaList([RowCap(prompt_length, caps)]),
            streamer=RowStreamer(tokenizer, rows, on_token, self.stop_ids) if on_token else None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        results = {}
        for index, row in enumerate(rows):
            generated = output[index, prompt_length:].tolist()
            stop_at = next((i for i, t in enumerate(generated) if t in self.stop_ids), None)
            tokens = generated if stop_at is None else generated[:stop_at]
            finished = stop_at is not None and generated[stop_at] == tokenizer.eos_token_id
            request = batch[row]
            raw = tokenizer.decode(tokens, skip_special_tokens=False)
            text, boxes = parse_grounded(raw, *request.image.size)
            if not text and boxes:
                text = boxes_as_text(boxes)
            results[row] = OcrResult(
                text=text,
                raw=raw,
                boxes=boxes,
                prompt_tokens=int(inputs["attention_mask"][index].sum()),
                completion_tokens=len(tokens),
                finish_reason="stop" if finished else "length",
                repetition_detected=index in blocker.fired or (not finished and tail_repeats(tokens)),
                inference_ms=elapsed_ms,
            )
        return results

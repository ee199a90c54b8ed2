"""DeepSeek-OCR-2 through transformers' native classes: batched generate, streaming, repetition guard."""

from __future__ import annotations

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
from transformers.utils import is_flash_attn_2_available

from gpu_worker.engines.base import Engine, EngineLoadError
from gpu_worker.engines.memory import (
    chunk_from_free_memory,
    free_bytes,
    is_out_of_memory,
    release_memory,
    run_vision_in_chunks,
)
from gpu_worker.engines.presets import NO_TILES, mode_kwargs, tile_grid
from gpu_worker.engines.repetition import TABLE_CELL_TOKENS, NGramRepeatBlocker, tail_repeats
from gpu_worker.engines.streaming import RowStreamer, RowText, decode
from gpu_worker.grounding import boxes_as_text, parse_grounded
from gpu_worker.protocol import MODEL_ID_DEEPSEEK, TASKS, PayloadTooLarge, ServiceError
from gpu_worker.types import OcrRequest, OcrResult, TokenCallback

log = logging.getLogger(__name__)

__all__ = ["NO_TILES", "DeepseekEngine", "mode_kwargs", "text_attention"]


def text_attention() -> str:
    """flash_attention_2 for the text model when flash-attn is installed and imports, else sdpa."""
    if not is_flash_attn_2_available():
        return "sdpa"
    try:
        import flash_attn  # noqa: F401  (a wheel built for another torch/CUDA fails here, not at find_spec)
    except Exception as exc:
        log.warning("flash-attn is installed but does not import (%s): using sdpa", exc)
        return "sdpa"
    return "flash_attention_2"


def _no_text(row: int, piece: str) -> None:
    """The token callback of a batch in which no row streams (never called: no row's text is sent)."""


class RowCap(StoppingCriteria):
    """Stops each row at its own token cap, counted from where its text starts (tensors on the device)."""

    def __init__(self, starts: torch.Tensor, caps: torch.Tensor):
        self.starts = starts
        self.caps = caps

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        return (input_ids.shape[1] - self.starts) >= self.caps  # type: ignore[return-value]


@dataclass
class Prepared:
    input_ids: torch.Tensor  # (1, length)
    pixel_values: torch.Tensor  # (1, 3, 1024, 1024)
    pixel_values_local: torch.Tensor | None  # (tiles, 3, 768, 768)
    tiles: int
    image_tokens: int
    grid: tuple[int, int] | None  # [columns, rows]


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
        dtype: torch.dtype | None = None,
        vision_chunk: int | None = None,
        static_cache: bool = False,
    ) -> None:
        self.model_ref = model_ref
        self.max_new_tokens = max_new_tokens
        self.max_time_s = max_time_s
        self.repetition_window = repetition_window
        self.repetition_ngram = min(repetition_ngram, repetition_window)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype or (torch.bfloat16 if self.device.startswith("cuda") else torch.float32)
        # Views per vision-encoder call; None: sized from free memory on CUDA, all at once on CPU.
        self.vision_chunk = vision_chunk
        self.static_cache = static_cache
        self._lock = threading.Lock()
        self.processor: Any = None
        self.model: Any = None
        self.eos_id = 0
        self.pad_id = 0
        self.whitelist: set[int] = set()

    # ---- loading ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Load processor and weights once, then run one short generate to prove the model works."""
        if self.model is not None:
            return
        processor, model = self._load_parts()
        self.attach(processor, model)
        log.info("deepseek loaded from %s on %s (%s)", self.model_ref, self.device, self.dtype)

    def _load_parts(self) -> tuple[Any, Any]:
        attention: str | dict[str, str] = "sdpa"
        if self.device.startswith("cuda"):
            # The vision encoders support sdpa only; the text model takes flash attention when present.
            attention = {"": "sdpa", "vision_config": "sdpa", "text_config": text_attention()}
        try:
            processor = AutoProcessor.from_pretrained(self.model_ref)
            # Straight onto the GPU (no CPU copy of 6.8 GB first) where accelerate is installed.
            placement = {"device_map": self.device} if self.device.startswith("cuda") else {}
            model: Any = AutoModelForImageTextToText.from_pretrained(
                self.model_ref, dtype=self.dtype, attn_implementation=attention, **placement
            )
            return processor, model.to(self.device).eval()
        except torch.OutOfMemoryError as exc:
            raise EngineLoadError(f"Not enough memory on {self.device} to load {self.model_ref}.") from exc
        except OSError as exc:
            raise EngineLoadError(
                f"Could not load DeepSeek-OCR-2 from {self.model_ref!r}: {exc}. Without network access, set "
                "DEEPSEEK_MODEL to a local folder holding the weights."
            ) from exc
        except Exception as exc:
            raise EngineLoadError(f"Could not load DeepSeek-OCR-2 from {self.model_ref!r}: {exc}") from exc

    def attach(self, processor: Any, model: Any) -> None:
        """Adopt a loaded processor and model: check the tokenizer, warm up; on failure stay unloaded."""
        tokenizer = processor.tokenizer
        if tokenizer.eos_token_id is None:
            raise EngineLoadError(f"The tokenizer of {self.model_ref!r} has no end-of-sequence token.")
        bos = tokenizer.bos_token_id
        ids = tokenizer("<image>\nFree OCR.")["input_ids"]
        if bos is None or not ids or ids[0] != bos:
            # The model was trained on prompts that start with BOS; without it the output is garbage.
            raise EngineLoadError(
                f"The tokenizer of {self.model_ref!r} does not put its BOS token first "
                f"(bos={bos!r}, first id={ids[0] if ids else None!r}); the checkpoint's tokenizer files are wrong."
            )
        self.eos_id = int(tokenizer.eos_token_id)
        # No pad token: pad with EOS (left padding sits under the attention mask; finished rows are cut).
        self.pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else self.eos_id
        vocab = tokenizer.get_vocab()
        self.whitelist = {vocab[t] for t in TABLE_CELL_TOKENS if t in vocab}
        tower = getattr(getattr(model, "model", None), "vision_tower", None)
        if tower is not None:
            run_vision_in_chunks(tower, self._vision_chunk_size)
        self.processor, self.model = processor, model
        try:
            self._warm_up()
        except BaseException:
            self.processor = self.model = None  # a second load() must really load
            raise

    def _warm_up(self) -> None:
        from PIL import Image

        probe = OcrRequest("warmup", Image.new("RGB", (64, 64), "white"), "ocr", "tiny", "<image>\nFree OCR.",
                           max_new_tokens=1)  # fmt: skip
        try:
            result = self.run([probe])[0]
        except Exception as exc:
            raise EngineLoadError(f"DeepSeek-OCR-2 loaded but failed its first run: {exc}") from exc
        if result.error is not None:
            raise EngineLoadError(f"DeepSeek-OCR-2 loaded but failed its first run: {result.error}")

    def _vision_chunk_size(self, pixel_values: torch.Tensor) -> int:
        if self.vision_chunk is not None:
            return self.vision_chunk
        if not self.device.startswith("cuda"):
            return pixel_values.shape[0]
        sam = self.model.config.vision_config.sam_config
        return chunk_from_free_memory(
            sam, pixel_values.shape[-1], pixel_values.dtype, free_bytes(self.device)
        )

    # ---- running ----------------------------------------------------------------------------------

    def run(self, batch: list[OcrRequest], on_token: TokenCallback | None = None) -> list[OcrResult]:
        """One batched generate per temperature group; per-request failures stay per request.

        Each result's `inference_ms` is the engine's whole time for the batch (image preprocessing,
        generation, decoding): what its caller waited on the engine for.
        """
        if self.model is None:
            raise EngineLoadError("deepseek engine used before load()")
        started = time.perf_counter()
        results: list[OcrResult | None] = [None] * len(batch)
        prepared: dict[int, Prepared] = {}
        for row, request in enumerate(batch):
            try:
                self.check_task(request.task)
                prepared[row] = self._prepare(request)
            except Exception as exc:
                results[row] = OcrResult(error=exc)
        states = {row: RowText(cap=self._cap(batch[row])) for row in prepared}
        groups: dict[float, list[int]] = {}
        for row in prepared:
            groups.setdefault(batch[row].temperature, []).append(row)
        with self._lock, torch.inference_mode():
            for rows in groups.values():
                for row, result in self._generate_splitting(batch, prepared, rows, on_token, states).items():
                    results[row] = result
        elapsed_ms = (time.perf_counter() - started) * 1000
        done = [r if r is not None else OcrResult(error=ServiceError("no result")) for r in results]
        for item in done:
            item.inference_ms = elapsed_ms
        return done

    def _cap(self, request: OcrRequest) -> int:
        return min(request.max_new_tokens or self.max_new_tokens, self.max_new_tokens)

    def _prepare(self, request: OcrRequest) -> Prepared:
        features = self.processor(
            images=request.image, text=request.prompt, return_tensors="pt", **mode_kwargs(request.mode)
        )
        tiles = int(features["num_local_patches"][0])
        grid = tile_grid(*request.image.size, request.mode)
        if (grid[0] * grid[1] if grid else 0) != tiles:
            log.warning("tile grid %s does not match the processor's %d tiles", grid, tiles)
            grid = None
        return Prepared(
            input_ids=features["input_ids"],
            pixel_values=features["pixel_values"],
            pixel_values_local=features.get("pixel_values_local"),
            tiles=tiles,
            image_tokens=int((features["input_ids"] == self.processor.image_token_id).sum()),
            grid=grid,
        )

    def _generate_splitting(
        self,
        batch: list[OcrRequest],
        prepared: dict[int, Prepared],
        rows: list[int],
        on_token: TokenCallback | None,
        states: dict[int, RowText],
    ) -> dict[int, OcrResult]:
        """Generate; on out-of-memory retry in halves, and fail alone a page that never fits.

        The retry runs after the `except` block has ended: inside it, the traceback would keep the
        failed attempt's tensors alive and `empty_cache()` could not give their memory back.
        """
        results: dict[int, OcrResult] = {}
        queue = [rows]
        while queue:
            group = queue.pop(0)
            for row in [r for r in group if states[r].done]:  # finished before the failure: nothing to redo
                results[row] = self._result(batch[row], prepared[row], states[row].tokens,
                                            states[row].ended_by_eos, fired=states[row].blocked)  # fmt: skip
            group = [r for r in group if not states[r].done]
            if not group:
                continue
            try:
                results.update(self._generate(batch, prepared, group, on_token, states))
                continue
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                log.warning("out of memory on a batch of %d (%s)", len(group), type(exc).__name__)
            release_memory(self.device)
            if len(group) == 1:
                request = batch[group[0]]
                log.warning("out of memory on a single page (request %s)", request.request_id)
                error = PayloadTooLarge(
                    f"The page does not fit in GPU memory at mode {request.mode!r}; try a smaller mode.",
                    param="mode",
                    code="out_of_memory",
                )
                results[group[0]] = OcrResult(error=error)
                continue
            half = len(group) // 2
            queue[:0] = [group[:half], group[half:]]
        return results

    def _collate(self, items: list[Prepared], history: list[list[int]]) -> dict[str, Any]:
        """Left-pad the prompts (each followed by the tokens its row already generated, if any)."""
        sequences = [torch.cat([item.input_ids[0], torch.tensor(done, dtype=torch.long)])
                     for item, done in zip(items, history, strict=True)]  # fmt: skip
        length = max(len(s) for s in sequences)
        input_ids = torch.full((len(items), length), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), length), dtype=torch.long)
        for index, sequence in enumerate(sequences):
            input_ids[index, length - len(sequence) :] = sequence
            attention_mask[index, length - len(sequence) :] = 1
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
        states: dict[int, RowText],
    ) -> dict[int, OcrResult]:
        items = [prepared[row] for row in rows]
        history = [list(states[row].tokens) for row in rows]  # streamed before an out-of-memory retry
        inputs = self._collate(items, history)
        prompt_length = inputs["input_ids"].shape[1]
        caps = [states[row].cap for row in rows]
        remaining = [cap - len(done) for cap, done in zip(caps, history, strict=True)]
        starts = torch.tensor([prompt_length - len(done) for done in history], device=self.device)
        caps_tensor = torch.tensor(caps, device=self.device)
        blocker = NGramRepeatBlocker(
            prompt_length, self.repetition_window, self.repetition_ngram, self.whitelist,
            eos_id=self.eos_id, caps=caps_tensor, starts=starts,
        )  # fmt: skip
        tokenizer = self.processor.tokenizer
        temperature = batch[rows[0]].temperature
        options: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            options = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
        if self.static_cache:
            options["cache_implementation"] = "static"
        # Every row keeps its tokens (one read-back per step), so it can continue after an out-of-memory split;
        # only the rows that stream are decoded as they go.
        streams = [batch[row].stream and on_token is not None for row in rows]
        streamer = RowStreamer(
            tokenizer, rows, [states[row] for row in rows], on_token or _no_text, self.eos_id, streams
        )
        try:
            output = self.model.generate(
                **inputs,
                **options,
                max_new_tokens=max(remaining),
                max_time=self.max_time_s,
                logits_processor=LogitsProcessorList([blocker]),
                stopping_criteria=StoppingCriteriaList([RowCap(starts, caps_tensor)]),
                streamer=streamer,
                pad_token_id=self.pad_id,
                eos_token_id=self.eos_id,
            )
        except Exception:
            try:  # the rows keep their tokens for a retry, and with them what was blocked
                for index in blocker.fired:
                    states[rows[index]].blocked = True
            except Exception as exc:  # never hide the failure itself
                log.warning("after a failed generate, which rows the repetition blocker changed is "
                            "unknown (%s): their repetition_detected may be missing", type(exc).__name__)  # fmt: skip
            raise
        now_fired = blocker.fired  # one read back from the device
        fired = {index for index, row in enumerate(rows) if index in now_fired or states[row].blocked}
        generated = output[:, prompt_length:].tolist()
        results = {}
        for index, row in enumerate(rows):
            # Only the row's own tokens: past its cap or its EOS, generate writes padding (maybe EOS).
            new = generated[index][: remaining[index]]
            eos_at = next((i for i, t in enumerate(new) if t == self.eos_id), None)
            tokens = history[index] + (new if eos_at is None else new[:eos_at])
            results[row] = self._result(batch[row], items[index], tokens, eos_at is not None,
                                        fired=index in fired)  # fmt: skip
        return results

    def _result(
        self,
        request: OcrRequest,
        item: Prepared,
        tokens: list[int],
        finished: bool,
        fired: bool,
    ) -> OcrResult:
        raw = decode(self.processor.tokenizer, tokens)  # the same decode the streamer uses
        locate = request.task == "locate"
        text, boxes = parse_grounded(raw, *request.image.size, locate=locate)
        if locate and not text and boxes:
            text = boxes_as_text(boxes)
        looped = not finished and tail_repeats(tokens, whitelist=self.whitelist)
        return OcrResult(
            text=text,
            raw=raw,
            boxes=boxes,
            prompt_tokens=int(item.input_ids.shape[1]),
            completion_tokens=len(tokens),
            finish_reason="stop" if finished else "length",
            repetition_detected=fired or looped,
            image_tokens=item.image_tokens,
            tiles=item.grid,
        )

"""Engines by name: `deepseek`, `rapidocr`, or `auto` (deepseek where CUDA is present)."""

from __future__ import annotations

import importlib.util
import logging

from gpu_worker.engines.base import Engine, EngineLoadError
from gpu_worker.settings import WorkerSettings

log = logging.getLogger(__name__)

__all__ = ["Engine", "EngineLoadError", "create_engine", "resolve_engine_name"]


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_engine_name(name: str) -> str:
    """`auto` -> `deepseek` with CUDA, else `rapidocr`; other names pass through."""
    if name != "auto":
        return name
    chosen = "deepseek" if cuda_available() else "rapidocr"
    log.info("OCR_ENGINE=auto chose %s (%s)", chosen, "CUDA present" if chosen == "deepseek" else "no CUDA")
    return chosen


def create_engine(settings: WorkerSettings, name: str | None = None) -> Engine:
    """Build (not load) the engine named by `name` or `settings.ocr_engine`."""
    resolved = resolve_engine_name(name or settings.ocr_engine)
    if resolved == "rapidocr":
        from gpu_worker.engines.rapid import RapidOcrEngine

        return RapidOcrEngine()
    if resolved == "deepseek":
        from gpu_worker.engines.deepseek import DeepseekEngine

        return DeepseekEngine(
            settings.deepseek_model,
            max_new_tokens=settings.max_new_tokens,
            max_time_s=settings.request_timeout_s,
            repetition_window=settings.repetition_window,
            repetition_ngram=settings.repetition_ngram,
            static_cache=settings.deepseek_static_cache,
        )
    raise ValueError(f"unknown engine {resolved!r}; use deepseek, rapidocr or auto")

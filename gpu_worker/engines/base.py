"""The engine interface: `load()` once, then a list of requests in, a list of results out."""

from __future__ import annotations

from abc import ABC, abstractmethod

from gpu_worker.protocol import InvalidRequest
from gpu_worker.types import OcrRequest, OcrResult, TokenCallback


class EngineLoadError(RuntimeError):
    """The engine could not load (missing weights, no memory, no network); one clear message."""


class Engine(ABC):
    """An OCR engine. `run` must be called from one thread at a time (the batching loop's)."""

    name: str = "engine"
    model_id: str = "engine"
    device: str = "cpu"
    tasks: tuple[str, ...] = ()

    @abstractmethod
    def load(self) -> None:
        """Load models and warm up; raises EngineLoadError."""

    @abstractmethod
    def run(self, batch: list[OcrRequest], on_token: TokenCallback | None = None) -> list[OcrResult]:
        """One result per request, in order; a request that alone fails gets `OcrResult(error=...)`.

        `on_token(row, piece)` receives the text of the rows whose request streams (`OcrRequest.stream`), as it
        is generated; the other rows' text is only in their results.
        """

    def check_task(self, task: str) -> None:
        """Refuse a task this engine cannot do, naming the engine."""
        if task not in self.tasks:
            raise InvalidRequest(
                f"Task {task!r} is not supported by engine {self.name!r} (supported: {', '.join(self.tasks)}).",
                param="task",
                code="unsupported_task",
            )

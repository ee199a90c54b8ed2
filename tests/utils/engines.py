"""Engines for tests that need to control time: a scripted engine that can be slow, gated or fail to load."""

from __future__ import annotations

import time

from gpu_worker.engines.base import Engine, EngineLoadError
from gpu_worker.protocol import Box
from gpu_worker.types import OcrResult


class ScriptedEngine(Engine):
    """A test engine: waits for `gate` (if any), sleeps (the GIL released, as a device wait), answers a fixed
    grounded text, or `error` for every row (a row failure, not an engine crash)."""

    name = "scripted"
    model_id = "scripted"
    tasks = ("markdown", "ocr", "locate")

    def __init__(self, delay=0.0, load_delay=0.0, load_error=None, gate=None, error=None):
        self.delay, self.load_delay, self.load_error, self.gate = delay, load_delay, load_error, gate
        self.error = error
        self.batches = []

    def load(self):
        time.sleep(self.load_delay)
        if self.load_error:
            raise EngineLoadError(self.load_error)

    def run(self, batch, on_token=None):
        self.batches.append(len(batch))
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        if self.error is not None:
            return [OcrResult(error=self.error) for _ in batch]
        return [OcrResult(text="hello", raw="hello", boxes=[Box(label="text", bbox=[1, 2, 30, 40])],
                          completion_tokens=1) for _ in batch]  # fmt: skip

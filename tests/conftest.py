"""Shared fixtures: engines and documents, scoped so the slow parts load once."""

from __future__ import annotations

import pytest

from gpu_worker.engines.rapid import RapidOcrEngine


@pytest.fixture(scope="session")
def rapid_engine() -> RapidOcrEngine:
    engine = RapidOcrEngine()
    engine.load()
    return engine

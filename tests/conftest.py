"""Shared fixtures: engines and documents, scoped so the slow parts load once."""

from __future__ import annotations

import pytest

from gpu_worker.engines.rapid import RapidOcrEngine


@pytest.fixture(scope="session")
def rapid_engine() -> RapidOcrEngine:
    engine = RapidOcrEngine()
    engine.load()
    return engine


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random DeepSeek-OCR-2 checkpoint folder, built once per test session."""
    from tests.utils.tiny_deepseek import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-deepseek-ocr2"))


@pytest.fixture(scope="session")
def deepseek_engine(tiny_model_dir):
    from gpu_worker.engines.deepseek import DeepseekEngine

    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=24)
    engine.load()
    return engine


@pytest.fixture(scope="session")
def local_s3():
    from tests.utils.servers import LocalS3

    s3 = LocalS3().start()
    yield s3
    s3.stop()


@pytest.fixture(scope="session")
def rapid_worker(local_s3):
    """The worker with the rapidocr engine, a real process on loopback, shared by the session."""
    from tests.utils.servers import WorkerProcess

    worker = WorkerProcess(local_s3, MAX_QUEUE="64", MAX_BATCH_SIZE="4").start()
    yield worker
    worker.stop()


EDGE_KEYS = ("sk-local-alice-0001", "sk-local-bob-0002")


@pytest.fixture(scope="session")
def edge_keys():
    return EDGE_KEYS


@pytest.fixture(scope="session")
def edge_server(local_s3, rapid_worker):
    """The edge as a real process in front of the shared rapidocr worker."""
    from tests.utils.servers import EdgeProcess

    edge = EdgeProcess(local_s3, rapid_worker.url, ",".join(EDGE_KEYS)).start()
    yield edge
    edge.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: sync Playwright keeps an event loop running in the main thread.

    Among them the local stack command's own tests come first: each runs `reflex run` in frontend/,
    which rebuilds frontend/.web (one is stopped mid-build on purpose), and that is the folder the
    session's shared stack serves its pages from. Run after it, they left its pages blank.
    """

    def tier(item: pytest.Item) -> int:
        if "e2e" not in item.path.parts:
            return 0
        return 1 if item.path.name == "test_local_stack_command.py" else 2

    items.sort(key=tier)

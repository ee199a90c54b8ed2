"""GPU tier: the deepseek engine on CUDA (skipped without CUDA; `python -m bench.gpu_fullsize` runs it)."""

import pytest
import torch
from PIL import Image

from gpu_worker.protocol import TASK_PROMPTS
from gpu_worker.types import OcrRequest

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def mixed_batch(tokens=12, stream=True):
    pages = [((1200, 900), "small", "ocr"), ((500, 400), "tiny", "ocr"), ((2304, 1536), "gundam", "describe")]
    return [
        OcrRequest(f"r{i}", Image.new("RGB", size, "white" if i % 2 else "black"), task, mode, TASK_PROMPTS[task],
                   max_new_tokens=tokens, stream=stream)
        for i, (size, mode, task) in enumerate(pages)
    ]  # fmt: skip


def first_step_logits(engine, requests):
    items = [engine._prepare(r) for r in requests]
    with torch.inference_mode():
        return engine.model(**engine._collate(items, [[] for _ in items])).logits[:, -1].float()


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    from gpu_worker.engines.deepseek import DeepseekEngine

    loaded = {}
    for name, dtype in (("bf16", None), ("fp32", torch.float32)):
        engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=12, dtype=dtype)
        engine.load()
        loaded[name] = engine
    return loaded


def test_the_engine_runs_in_bf16_on_cuda(engines):
    engine = engines["bf16"]
    assert engine.dtype == torch.bfloat16 and engine.device == "cuda"
    assert all(r.error is None and r.completion_tokens == 12 for r in engine.run(mixed_batch()))


def test_in_fp32_every_row_of_a_batch_equals_its_run_alone(engines):
    engine = engines["fp32"]
    batch = mixed_batch()
    batched = engine.run(batch)
    serial = [engine.run([r])[0] for r in batch]
    assert [r.raw for r in batched] == [r.raw for r in serial]


def test_in_bf16_batch_and_alone_agree_within_rounding(engines):
    """bf16 kernels differ with the batch shape; the tiny model's top-2 gap is smaller than that noise,
    so tokens may differ: compare the logits with bf16's tolerance instead."""
    engine = engines["bf16"]
    batch = mixed_batch()
    together = first_step_logits(engine, batch)
    for row, request in enumerate(batch):
        alone = first_step_logits(engine, [request])[0]
        assert torch.allclose(together[row], alone, atol=3e-2, rtol=3e-2), f"row {row}"


def test_streamed_pieces_add_up_to_each_rows_text(engines):
    pieces: dict[int, list[str]] = {0: [], 1: [], 2: []}
    results = engines["bf16"].run(mixed_batch(), on_token=lambda row, piece: pieces[row].append(piece))
    assert ["".join(pieces[row]) for row in range(3)] == [r.raw for r in results]


def test_the_vision_encoder_chunk_is_sized_from_free_memory_and_changes_nothing(engines):
    engine = engines["fp32"]
    views = torch.zeros((2, 3, 1024, 1024), dtype=engine.dtype, device="cuda")
    assert engine._vision_chunk_size(views) >= 1
    batch = mixed_batch()
    whole = first_step_logits(engine, batch)
    engine.vision_chunk = 1
    try:
        chunked = first_step_logits(engine, batch)
    finally:
        engine.vision_chunk = None
    assert torch.allclose(whole, chunked, atol=1e-4)


def test_a_generation_step_of_the_guards_never_syncs_with_the_host():
    from gpu_worker.engines.deepseek import RowCap
    from gpu_worker.engines.repetition import NGramRepeatBlocker

    ids = torch.randint(3, 9, (8, 200), device="cuda")
    scores = torch.randn((8, 1000), device="cuda")
    caps = torch.full((8,), 150, device="cuda")
    starts = torch.full((8,), 40, device="cuda")
    blocker = NGramRepeatBlocker(40, 90, 30, {5}, eos_id=1, caps=caps, starts=starts)
    cap = RowCap(starts, caps)
    blocker(ids, scores.clone())  # the first step moves the whitelist to the device once
    torch.cuda.set_sync_debug_mode("error")
    try:
        blocker(ids, scores.clone())
        cap(ids, scores)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_a_real_cuda_allocation_failure_is_recognised():
    from gpu_worker.engines.memory import is_out_of_memory

    free, _total = torch.cuda.mem_get_info()
    with pytest.raises(Exception) as caught:
        torch.empty(free * 4, dtype=torch.uint8, device="cuda")
    assert is_out_of_memory(caught.value)

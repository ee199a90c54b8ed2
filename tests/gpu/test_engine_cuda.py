"""GPU tier: the deepseek engine in bf16 on CUDA (skipped without CUDA)."""

import pytest
import torch
from PIL import Image

from gpu_worker.protocol import TASK_PROMPTS
from gpu_worker.types import OcrRequest

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_bf16_batch_on_cuda_matches_serial(tiny_model_dir):
    from gpu_worker.engines.deepseek import DeepseekEngine

    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=12)
    engine.load()
    assert engine.dtype == torch.bfloat16 and engine.device == "cuda"
    batch = [
        OcrRequest(f"r{i}", Image.new("RGB", size, "white"), "ocr", "small", TASK_PROMPTS["ocr"])
        for i, size in enumerate([(1200, 900), (500, 400)])
    ]
    batched = engine.run(batch)
    assert all(r.error is None and r.completion_tokens == 12 for r in batched)
    serial = [engine.run([r])[0] for r in batch]
    assert [r.raw for r in batched] == [r.raw for r in serial]

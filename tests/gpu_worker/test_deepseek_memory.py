"""Out-of-memory recognition and the vision encoder's chunk size (no model needed)."""

import pytest
import torch

from bench.gpu_fullsize import full_config
from gpu_worker.engines.deepseek import RowCap
from gpu_worker.engines.memory import (
    ATTENTION_MAPS_PER_IMAGE,
    SHARE_OF_FREE_MEMORY,
    attention_map_bytes,
    chunk_from_free_memory,
    is_out_of_memory,
    vision_bytes_per_image,
)

GiB = 2**30


@pytest.mark.parametrize(
    "error, expected",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB"), True),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), True),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
        (
            RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
            True,
        ),
        (
            RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
            True,
        ),
        (RuntimeError("CUDA error: device-side assert triggered"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_allocation_failures_are_recognised_whatever_their_type(error, expected):
    assert is_out_of_memory(error) is expected


def test_the_estimate_counts_the_sam_attention_maps_the_issue_measured():
    sam = full_config().vision_config.sam_config
    # one (12, N, N) bf16 map is ~403 MB for a global view and ~127 MB for a tile
    assert attention_map_bytes(sam, 1024, torch.bfloat16) == pytest.approx(403e6, rel=0.01)
    assert attention_map_bytes(sam, 768, torch.bfloat16) == pytest.approx(127e6, rel=0.01)
    for side in (1024, 768):
        maps = ATTENTION_MAPS_PER_IMAGE * attention_map_bytes(sam, side, torch.bfloat16)
        assert maps < vision_bytes_per_image(sam, side, torch.bfloat16) < 1.3 * maps


def test_the_chunk_grows_with_free_memory_and_never_drops_to_zero():
    sam = full_config().vision_config.sam_config
    # an L4 with the model loaded: ~14 GiB free -> a handful of global views, more tiles
    globals_ = chunk_from_free_memory(sam, 1024, torch.bfloat16, 14 * GiB)
    tiles = chunk_from_free_memory(sam, 768, torch.bfloat16, 14 * GiB)
    assert 1 <= globals_ < tiles
    assert globals_ * vision_bytes_per_image(sam, 1024, torch.bfloat16) <= SHARE_OF_FREE_MEMORY * 14 * GiB
    assert chunk_from_free_memory(sam, 1024, torch.bfloat16, 0) == 1
    assert chunk_from_free_memory(sam, 1024, torch.bfloat16, 100 * GiB) > globals_


def test_row_caps_stop_each_row_without_reading_back_from_the_device(monkeypatch):
    cap = RowCap(starts=torch.tensor([5, 3]), caps=torch.tensor([2, 4]))

    def host_read(*args, **kwargs):
        raise AssertionError("host read during a generation step")

    for name in ("tolist", "item", "__bool__", "__int__", "__index__", "to"):
        monkeypatch.setattr(torch.Tensor, name, host_read)
    done = cap(torch.zeros((2, 7), dtype=torch.long), None)
    monkeypatch.undo()
    assert done.tolist() == [True, True]
    assert cap(torch.zeros((2, 6), dtype=torch.long), None).tolist() == [False, False]

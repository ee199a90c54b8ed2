"""Device memory: recognising out-of-memory failures, freeing memory, and a vision encoder run in chunks."""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Callable
from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutput

log = logging.getLogger(__name__)

# Allocation failures that CUDA libraries report as a plain RuntimeError instead of OutOfMemoryError.
OOM_MESSAGES = (
    "out of memory",  # "CUDA out of memory", "CUDA error: out of memory"
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUSOLVER_STATUS_ALLOC_FAILED",
    "CUFFT_ALLOC_FAILED",
    "can't allocate memory",  # the CPU allocator
)
SHARE_OF_FREE_MEMORY = 0.5  # the rest stays for the text model's activations and KV cache
# Live tensors per image in a global-attention SAM layer, counted in (heads, N, N) attention maps:
# the decomposed relative-position bias, its broadcast sum, and the attention kernel's own map.
ATTENTION_MAPS_PER_IMAGE = 4


def is_out_of_memory(error: BaseException) -> bool:
    """True for torch's OutOfMemoryError and for allocation failures raised as RuntimeError."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(m in str(error) for m in OOM_MESSAGES)


def release_memory(device: str) -> None:
    """Collect garbage (tracebacks hold tensors in cycles) and hand cached blocks back to the device."""
    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


def free_bytes(device: str) -> int:
    """Memory a new allocation can use on a CUDA device: free memory plus what torch caches unused."""
    index = torch.device(device).index or 0
    free, _total = torch.cuda.mem_get_info(index)
    cached = torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
    return int(free + max(cached, 0))


def attention_map_bytes(sam_config: Any, side: int, dtype: torch.dtype) -> int:
    """One (heads, N, N) attention map of a global-attention SAM layer for a `side` px view."""
    tokens = (side // sam_config.patch_size) ** 2
    return sam_config.num_attention_heads * tokens * tokens * (torch.finfo(dtype).bits // 8)


def vision_bytes_per_image(sam_config: Any, side: int, dtype: torch.dtype) -> int:
    """Peak memory one `side` x `side` view costs in the SAM encoder (its attention maps dominate)."""
    tokens = (side // sam_config.patch_size) ** 2
    activations = 16 * tokens * sam_config.hidden_size * (torch.finfo(dtype).bits // 8)
    return ATTENTION_MAPS_PER_IMAGE * attention_map_bytes(sam_config, side, dtype) + activations


def chunk_from_free_memory(sam_config: Any, side: int, dtype: torch.dtype, free: int) -> int:
    """How many views of `side` px fit at once in a share of `free` bytes (at least one)."""
    return max(1, int(free * SHARE_OF_FREE_MEMORY) // vision_bytes_per_image(sam_config, side, dtype))


def run_vision_in_chunks(vision_tower: torch.nn.Module, chunk_size: Callable[[torch.Tensor], int]) -> None:
    """Make `vision_tower` encode its views `chunk_size(pixel_values)` at a time.

    Every view is encoded on its own (SAM and the query encoder never mix images), so chunking
    changes peak memory, not results. Chunks only where a caller asks for the last hidden state
    alone, which is what the model's `get_image_features` reads.
    """
    if getattr(vision_tower, "_chunked", False):
        return
    whole = vision_tower.forward

    @functools.wraps(whole)
    def forward(pixel_values: torch.Tensor, **kwargs: Any) -> Any:
        size = chunk_size(pixel_values)
        wants_more = kwargs.get("output_hidden_states") or kwargs.get("output_attentions")
        if size >= pixel_values.shape[0] or wants_more:
            return whole(pixel_values, **kwargs)
        parts = [
            whole(pixel_values[start : start + size], **kwargs).last_hidden_state
            for start in range(0, pixel_values.shape[0], size)
        ]
        return BaseModelOutput(last_hidden_state=torch.cat(parts))

    vision_tower.forward = forward  # type: ignore[method-assign]
    vision_tower._chunked = True  # type: ignore[assignment]

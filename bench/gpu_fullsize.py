"""The GPU check: the GPU test tier, then the FULL-SIZE DeepSeek-OCR-2 (random weights) measured.

One command (well under 8 minutes on one GPU) runs `pytest tests/gpu`, builds the real model's
shape with random weights on the device (the same compute as the real weights, no download), and
measures per preset at batch 1/4/8/16:
- bare `generate` (fixed output length: EOS suppressed through `min_new_tokens`), and
- the engine itself (`DeepseekEngine.run`: preprocessing, the per-row streamer, the repetition
  blocker and the per-row caps), on the same pages;
then tries a static KV cache (compiled decode step on CUDA) and keeps it only when it gives the same
tokens and is faster. The last line printed is a JSON summary.

    timeout 480 python -m bench.gpu_fullsize [--tokens 96] [--modes tiny,small,base,large,gundam]
        [--batches 1,4,8,16] [--no-static-cache] [--no-tests] [--budget-s 400] [--json out.json]

`--tiny` runs the same steps on the tiny test model on any device (the suite runs it on CPU, so this
script cannot rot unnoticed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# A page per preset that takes the preset's full tile budget (its ceiling, see docs/presets.md).
PRESET_PAGES = {
    "tiny": (2000, 1500),
    "small": (1536, 768),
    "base": (2304, 768),
    "large": (1536, 1536),
    "gundam": (2304, 1536),
}
FULL_VOCAB = 129280
STATIC_RESERVE_S = 120.0


def full_config(image_token_id: int = 128815):
    """The real model's shape (ENVIRONMENT.md), about 3.4 B parameters."""
    from transformers import DeepseekOcr2Config

    return DeepseekOcr2Config(
        vision_config={
            "sam_config": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                           "global_attn_indexes": [2, 5, 8, 11], "downsample_channels": [512, 896]},
            "encoder_config": {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
                               "num_key_value_heads": 2, "intermediate_size": 4864},
        },
        text_config={"vocab_size": FULL_VOCAB, "hidden_size": 1280, "intermediate_size": 6848,
                     "num_hidden_layers": 12, "num_attention_heads": 10, "n_routed_experts": 64,
                     "n_shared_experts": 2, "num_experts_per_tok": 6, "moe_intermediate_size": 896,
                     "mlp_layer_types": ["dense"] + ["sparse"] * 11, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 2},
        image_token_id=image_token_id,
    )  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=96, help="new tokens per page")
    parser.add_argument("--modes", default="tiny,small,base,large,gundam")
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--tiny", action="store_true", help="the tiny test model instead of the full size")
    parser.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    parser.add_argument("--no-static-cache", dest="static_cache", action="store_false")
    parser.add_argument("--no-tests", dest="tests", action="store_false", help="skip pytest tests/gpu")
    parser.add_argument("--budget-s", type=float, default=400.0, help="stop starting new runs after this")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    return parser.parse_args(argv)


def run_gpu_tests(timeout_s: float) -> dict[str, Any]:
    """The GPU test tier in a subprocess; its outcome in numbers."""
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/gpu", "-q", "-p", "no:cacheprovider"],
                              capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"ok": False, "summary": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    print(done.stdout[-3000:], flush=True)
    return {"ok": done.returncode == 0, "summary": lines[-1] if lines else done.stderr[-500:],
            "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip


def build_engine(tiny: bool, device: str, max_new_tokens: int) -> tuple[Any, dict[str, Any]]:
    """A DeepseekEngine around a random-weight model built on the device (no files, no download)."""
    import torch
    from transformers import AutoModelForImageTextToText, DeepseekOcr2ImageProcessorPil, DeepseekOcr2Processor

    from gpu_worker.engines.deepseek import DeepseekEngine
    from tests.utils.tiny_deepseek import build_tokenizer, tiny_config

    started = time.perf_counter()
    tokenizer = build_tokenizer(vocab_size=None if tiny else FULL_VOCAB)  # decodes what the model writes
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    config = tiny_config(len(tokenizer), image_token_id) if tiny else full_config(image_token_id)
    engine = DeepseekEngine("random-" + ("tiny" if tiny else "full-size"), max_new_tokens=max_new_tokens,
                            device=device)  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(
            config, dtype=engine.dtype, attn_implementation="sdpa"
        )
    processor = DeepseekOcr2Processor(image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=tokenizer)
    engine.attach(processor, model.eval())
    info = {"params_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3), "dtype": str(engine.dtype),
            "experts": getattr(model.config, "_experts_implementation", None),
            "build_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    return engine, info


def requests_for(mode: str, batch: int, tokens: int) -> list[Any]:
    from PIL import Image

    from gpu_worker.protocol import TASK_PROMPTS
    from gpu_worker.types import OcrRequest

    page = Image.new("RGB", PRESET_PAGES[mode], "white")
    return [OcrRequest(f"{mode}-{i}", page, "ocr", mode, TASK_PROMPTS["ocr"], max_new_tokens=tokens, stream=True)
            for i in range(batch)]  # fmt: skip


class Clock:
    """Wall time of a block with the device drained before and after; peak device memory."""

    def __init__(self, device: str):
        import torch

        self.torch, self.cuda = torch, device.startswith("cuda")

    def __enter__(self) -> Clock:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.started
        self.peak_gib = self.torch.cuda.max_memory_allocated() / 2**30 if self.cuda else 0.0


def measure(engine: Any, mode: str, batch: int, tokens: int, quiet: bool = False) -> dict[str, Any]:
    """Bare generate vs the engine on the same `batch` pages of `mode`."""
    import torch

    requests = requests_for(mode, batch, tokens)
    items = [engine._prepare(r) for r in requests]
    inputs = engine._collate(items, [[] for _ in items])
    with torch.inference_mode(), Clock(engine.device) as bare:
        out = engine.model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                                    pad_token_id=engine.pad_id, eos_token_id=engine.eos_id)  # fmt: skip
    bare_tokens = (out.shape[1] - inputs["input_ids"].shape[1]) * batch
    pieces = [0]
    with Clock(engine.device) as run:
        results = engine.run(requests, on_token=lambda row, piece: pieces.__setitem__(0, pieces[0] + 1))
    errors = [str(r.error) for r in results if r.error is not None]
    engine_tokens = sum(r.completion_tokens for r in results)
    row = {
        "mode": mode, "batch": batch, "image_tokens": items[0].image_tokens,
        "bare_s": round(bare.seconds, 3), "bare_tok_s": round(bare_tokens / bare.seconds, 1),
        "engine_s": round(run.seconds, 3), "engine_tok_s": round(engine_tokens / run.seconds, 1),
        "engine_pages_s": round(batch / run.seconds, 2), "engine_tokens": engine_tokens,
        # time per generated token through the engine over the same for bare generate
        "engine_vs_bare": round(run.seconds / bare.seconds * bare_tokens / max(engine_tokens, 1), 2),
        "streamed_pieces": pieces[0], "peak_gib": round(max(bare.peak_gib, run.peak_gib), 2), "errors": errors,
    }  # fmt: skip
    if not quiet:
        print(json.dumps(row), flush=True)
    return row


def try_static_cache(engine: Any, mode: str, batch: int, tokens: int) -> dict[str, Any]:
    """Static KV cache (compiled decode step on CUDA) vs the default: kept only if same tokens and faster."""
    requests = requests_for(mode, batch, tokens)
    timings, raws = {}, {}
    for static in (False, True):
        engine.static_cache = static
        engine.run(requests)  # warm (on CUDA the first static run compiles the decode step)
        with Clock(engine.device) as clock:
            raws[static] = [r.raw for r in engine.run(requests)]
        timings[static] = clock.seconds
    same = raws[False] == raws[True]
    faster = timings[True] < timings[False]
    engine.static_cache = same and faster
    verdict = {"mode": mode, "batch": batch, "dynamic_s": round(timings[False], 3),
               "static_s": round(timings[True], 3), "speedup": round(timings[False] / timings[True], 2),
               "same_tokens": same, "kept": engine.static_cache}  # fmt: skip
    print(json.dumps({"static_cache": verdict}), flush=True)
    return verdict


def main(argv: list[str] | None = None) -> int:
    """Run the check; print one JSON line per measurement and a JSON summary last."""
    args = parse_args(argv)
    import torch
    import transformers

    started = time.perf_counter()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not args.tiny and not device.startswith("cuda"):
        print("the full-size model needs a CUDA device: use --tiny elsewhere")
        return 1
    summary: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "model": "tiny" if args.tiny else "full-size", "tokens": args.tokens,
    }  # fmt: skip
    if args.tests:
        summary["tests"] = run_gpu_tests(timeout_s=max(60.0, args.budget_s / 3))
    engine, summary["build"] = build_engine(args.tiny, device, args.tokens)
    runs, skipped = [], []
    # The static-cache trial compiles the decode step on CUDA (a minute or two): keep time for it.
    sweep_budget = args.budget_s - (STATIC_RESERVE_S if args.static_cache and not args.tiny else 0)
    for mode in args.modes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            if time.perf_counter() - started > sweep_budget:
                skipped.append(f"{mode}@{batch}")
                continue
            if batch == int(args.batches.split(",")[0]):
                measure(engine, mode, batch, min(4, args.tokens), quiet=True)  # warm this page shape
            runs.append(measure(engine, mode, batch, args.tokens))
    summary["runs"], summary["skipped"] = runs, skipped
    if args.static_cache:
        if time.perf_counter() - started < args.budget_s:
            batches = [int(b) for b in args.batches.split(",")]
            summary["static_cache"] = try_static_cache(
                engine, args.modes.split(",")[0], batches[-1], args.tokens
            )
        else:
            summary["static_cache"] = {"skipped": "over the time budget"}
    summary["ok"] = (
        bool(runs) and not any(r["errors"] for r in runs) and summary.get("tests", {}).get("ok", True)
    )
    summary["elapsed_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(summary)
    if args.json is not None:
        args.json.write_text(text)
    print(text)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

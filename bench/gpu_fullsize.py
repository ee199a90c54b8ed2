"""GPU benchmark: the FULL-SIZE DeepSeek-OCR-2 configuration with random weights, built on CUDA.

Measures generated tokens/s and pages/s at batch 1/4/8/16 with a fixed output length (EOS
suppressed through `min_new_tokens`), per mode preset. Random weights cost the same compute as the
real ones and need no download.

    timeout 540 python -m bench.gpu_fullsize [--tokens 128] [--modes tiny,small,gundam] [--batches 1,4,8,16]
"""

from __future__ import annotations

import argparse
import sys
import time


def full_config():
    """The real model's shape (ENVIRONMENT.md), about 3.4 B parameters."""
    from transformers import DeepseekOcr2Config

    return DeepseekOcr2Config(
        vision_config={
            "sam_config": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                           "global_attn_indexes": [2, 5, 8, 11], "downsample_channels": [512, 896]},
            "encoder_config": {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
                               "num_key_value_heads": 2, "intermediate_size": 4864},
        },
        text_config={"vocab_size": 129280, "hidden_size": 1280, "intermediate_size": 6848,
                     "num_hidden_layers": 12, "num_attention_heads": 10, "n_routed_experts": 64,
                     "n_shared_experts": 2, "num_experts_per_tok": 6, "moe_intermediate_size": 896,
                     "mlp_layer_types": ["dense"] + ["sparse"] * 11, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 2},
        image_token_id=128815,
    )  # fmt: skip


def main() -> int:
    """Print one row per (mode, batch): tokens/s, pages/s, peak memory."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--modes", default="tiny,small,gundam")
    parser.add_argument("--batches", default="1,4,8,16")
    args = parser.parse_args()

    import torch
    import transformers

    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark runs on a GPU only")
        return 1
    if not hasattr(transformers, "DeepseekOcr2Config"):
        print(f"transformers {transformers.__version__} has no deepseek_ocr2: install >= 5.23")
        return 1
    from transformers import AutoModelForImageTextToText, DeepseekOcr2ImageProcessorPil

    from gpu_worker.engines.deepseek import mode_kwargs
    from gpu_worker.protocol import MODES

    gpu = torch.cuda.get_device_name(0)
    print(f"GPU: {gpu}; torch {torch.__version__}; transformers {transformers.__version__}")
    started = time.perf_counter()
    with torch.device("cuda"):
        model = AutoModelForImageTextToText.from_config(
            full_config(), dtype=torch.bfloat16, attn_implementation="sdpa"
        )
    model.eval()
    params = sum(p.numel() for p in model.parameters()) / 1e9
    print(f"built {params:.2f} B parameters in {time.perf_counter() - started:.1f} s")
    image_processor = DeepseekOcr2ImageProcessorPil()
    page = __import__("PIL.Image", fromlist=["Image"]).new("RGB", (1654, 2339), "white")  # A4 at 200 dpi
    prompt = [0] + [1000 + i for i in range(12)]
    print(
        f"{'mode':>7} {'batch':>5} {'img tok':>7} {'s':>7} {'gen tok/s':>10} {'pages/s':>8} {'peak GiB':>9}"
    )
    for mode in args.modes.split(","):
        kwargs = mode_kwargs(mode)
        features = image_processor(page, return_tensors="pt", **kwargs)
        tiles = int(features["num_local_patches"][0])
        image_tokens = 256 + 1 + 144 * tiles
        assert image_tokens <= MODES[mode].image_tokens
        for batch in (int(b) for b in args.batches.split(",")):
            ids = torch.tensor([prompt[:1] + [128815] * image_tokens + prompt[1:]] * batch, device="cuda")
            inputs = {
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "pixel_values": features["pixel_values"].repeat(batch, 1, 1, 1).to("cuda", torch.bfloat16),
                "num_local_patches": [tiles] * batch,
            }
            if tiles:
                inputs["pixel_values_local"] = (
                    features["pixel_values_local"].repeat(batch, 1, 1, 1).to("cuda", torch.bfloat16)
                )
            torch.cuda.reset_peak_memory_stats()
            with torch.inference_mode():
                model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)  # warm
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                out = model.generate(
                    **inputs, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False
                )
                torch.cuda.synchronize()
                elapsed = time.perf_counter() - t0
            generated = (out.shape[1] - ids.shape[1]) * batch
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"{mode:>7} {batch:>5} {image_tokens:>7} {elapsed:>7.2f} {generated / elapsed:>10.1f} "
                  f"{batch / elapsed:>8.2f} {peak:>9.1f}")  # fmt: skip
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

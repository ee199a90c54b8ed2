"""CPU benchmark: deepseek engine throughput on the tiny model, serial vs batched at 1/2/4/8 requests.

.venv/bin/python -m bench.engine_cpu [--tokens 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from gpu_worker.engines.deepseek import DeepseekEngine
from gpu_worker.protocol import TASK_PROMPTS
from gpu_worker.types import OcrRequest
from tests.utils.tiny_deepseek import build_tiny_model


def main() -> None:
    """Print pages/s serial and batched, and their ratio, for each batch size."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--mode", default="small")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = DeepseekEngine(str(build_tiny_model(Path(folder))), max_new_tokens=args.tokens)
        engine.load()
        sizes = [(1200, 900), (800, 1000), (640, 480), (1600, 1200)]
        print(f"tiny DeepSeek-OCR-2 on CPU, mode {args.mode}, {args.tokens} new tokens per page")
        print(
            f"{'n':>3} {'serial s':>9} {'batched s':>10} {'serial p/s':>11} {'batched p/s':>12} {'speed-up':>9}"
        )
        for n in (1, 2, 4, 8):
            batch = [
                OcrRequest(
                    f"r{i}", Image.new("RGB", sizes[i % 4], "white"), "ocr", args.mode, TASK_PROMPTS["ocr"]
                )
                for i in range(n)
            ]
            engine.run(batch[:1])  # warm
            started = time.perf_counter()
            for request in batch:
                engine.run([request])
            serial = time.perf_counter() - started
            started = time.perf_counter()
            engine.run(batch)
            batched = time.perf_counter() - started
            print(
                f"{n:>3} {serial:>9.2f} {batched:>10.2f} {n / serial:>11.2f} {n / batched:>12.2f} {serial / batched:>8.2f}x"
            )


if __name__ == "__main__":
    main()

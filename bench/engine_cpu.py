"""CPU benchmark: deepseek engine throughput on the tiny model, serial vs batched at 1/2/4/8 requests,
and the streamer's host time per step on a long single-line table (incremental vs re-decoding the line, and
with only one of the rows streaming: the others only keep their tokens).

.venv/bin/python -m bench.engine_cpu [--tokens 32] [--stream-rows 16] [--stream-tokens 4000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from gpu_worker.engines.deepseek import DeepseekEngine
from gpu_worker.engines.streaming import RowStreamer, RowText
from gpu_worker.protocol import TASK_PROMPTS
from gpu_worker.types import OcrRequest
from tests.utils.tiny_deepseek import build_tiny_model, build_tokenizer


def line_redecode_step(tokenizer, lines: list[list[int]], tokens: list[int]) -> None:
    """The previous streamer's work per step: decode each row's whole current line again."""
    for line, token in zip(lines, tokens, strict=True):
        line.append(token)
        tokenizer.decode(line, skip_special_tokens=False)


def streamer_cost(rows: int, length: int) -> None:
    """Host ms per generation step for `rows` rows writing one `length`-token line (an HTML table)."""
    tokenizer = build_tokenizer()
    cell = tokenizer("<td>Größe 0123456789 €</td>", add_special_tokens=False)["input_ids"]
    line = (cell * (length // len(cell) + 1))[:length]

    def per_step(streams: list[bool]) -> float:
        states = [RowText(cap=length + 1) for _ in range(rows)]
        streamer = RowStreamer(tokenizer, list(range(rows)), states, lambda row, piece: None, 1, streams)
        streamer.put(torch.zeros((rows, 1), dtype=torch.long))
        started = time.perf_counter()
        for token in line:
            streamer.put(torch.full((rows,), token))
        return (time.perf_counter() - started) / length * 1000

    incremental = per_step([True] * rows)
    one_streams = per_step([True] + [False] * (rows - 1))
    lines: list[list[int]] = [[] for _ in range(rows)]
    started = time.perf_counter()
    for token in line:
        line_redecode_step(tokenizer, lines, [token] * rows)
    redecode = (time.perf_counter() - started) / length * 1000
    print(f"streamer, {rows} rows x {length}-token single line: incremental {incremental:.3f} ms/step, "
          f"re-decoding the line {redecode:.3f} ms/step ({redecode / incremental:.1f}x); one row of {rows} "
          f"streaming {one_streams:.3f} ms/step ({one_streams / incremental:.2f}x of all streaming)")  # fmt: skip


def main() -> None:
    """Print pages/s serial and batched, and their ratio, for each batch size."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--mode", default="small")
    parser.add_argument("--stream-rows", type=int, default=16)
    parser.add_argument("--stream-tokens", type=int, default=4000)
    args = parser.parse_args()
    streamer_cost(args.stream_rows, args.stream_tokens)
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

"""The measured cost of each mode preset on common page shapes, from transformers' own processor.

Writes docs/presets.md (a test checks the committed file equals what the processor computes now):

    .venv/bin/python -m bench.preset_table [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpu_worker.engines.presets import mode_kwargs, tile_grid
from gpu_worker.protocol import MODES, MODES_ORDER

TABLE = Path(__file__).resolve().parent.parent / "docs" / "presets.md"
PAGES = [
    ("A4 portrait (200 dpi scan)", 1654, 2339),
    ("A4 landscape (200 dpi scan)", 2339, 1654),
    ("Square", 1600, 1600),
    ("Till receipt (80 mm, 203 dpi)", 576, 2400),
    ("Small photo", 640, 480),
]
HEADER = """# What each mode costs

A mode is a ceiling, not a promise. The processor cuts a page larger than 768 px into 768 px tiles,
and among the grids a mode allows (at least 2 tiles, at most the mode's cap) it picks the one
nearest the page's aspect ratio, so a larger mode often costs no more than a smaller one. Every
response reports what its page actually cost in `ocr.image_tokens` and `ocr.tiles`
(`[columns, rows]`).

Cells: image tokens (tile grid, columns x rows). Tokens = 256 (1024 px global view) + 1 separator
+ 144 per tile. Measured with transformers' `DeepseekOcr2Processor`; regenerate with
`python -m bench.preset_table` (a test fails when this file and the processor disagree).
"""


def measure(width: int, height: int, mode: str, processor) -> tuple[int, tuple[int, int] | None]:
    """Image tokens the processor emits for a blank page of this size at `mode`, and its tile grid."""
    from PIL import Image

    features = processor(
        images=Image.new("RGB", (width, height), "white"),
        text="<image>",
        return_tensors="pt",
        **mode_kwargs(mode),
    )
    tokens = int((features["input_ids"] == processor.image_token_id).sum())
    grid = tile_grid(width, height, mode)
    if (grid[0] * grid[1] if grid else 0) != int(features["num_local_patches"][0]):
        raise AssertionError(f"tile grid {grid} disagrees with the processor for {width}x{height} at {mode}")
    return tokens, grid


def render() -> str:
    """The markdown table, computed now."""
    from transformers import DeepseekOcr2ImageProcessorPil, DeepseekOcr2Processor

    from tests.utils.tiny_deepseek import build_tokenizer  # image tokens do not depend on the vocabulary

    processor = DeepseekOcr2Processor(
        image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=build_tokenizer()
    )
    heads = [f"{mode} (up to {MODES[mode].image_tokens})" for mode in MODES_ORDER]
    lines = [HEADER, "| page | pixels | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for name, width, height in PAGES:
        cells = []
        for mode in MODES_ORDER:
            tokens, grid = measure(width, height, mode, processor)
            cells.append(f"{tokens} ({grid[0]}x{grid[1]})" if grid else f"{tokens} (global only)")
        lines.append(f"| {name} | {width} x {height} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Write docs/presets.md, or with --check say whether it is current."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/presets.md is out of date")
    args = parser.parse_args()
    table = render()
    if args.check:
        current = TABLE.exists() and TABLE.read_text() == table
        print("docs/presets.md is current" if current else "docs/presets.md is out of date")
        return 0 if current else 1
    TABLE.write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Mode presets as processor arguments, and the tile grid a page actually gets."""

from __future__ import annotations

from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import get_optimal_tiled_canvas

from gpu_worker.protocol import MODES, TILE_PX

NO_TILES = 10**9  # a tile size no page exceeds: the processor then takes the global view only


def mode_kwargs(mode: str) -> dict[str, int]:
    """Processor arguments that apply a mode preset."""
    preset = MODES[mode]
    if preset.max_tiles == 0:
        return {"tile_size": NO_TILES}
    return {"min_patches": preset.min_tiles, "max_patches": preset.max_tiles}


def tile_grid(width: int, height: int, mode: str) -> tuple[int, int] | None:
    """[columns, rows] of 768 px tiles the processor cuts a page into at `mode`; None for none.

    The same rule the image processor applies: tiles only for a page larger than one tile, and
    among the grids the preset allows, the one closest to the page's aspect ratio.
    """
    preset = MODES[mode]
    if preset.max_tiles == 0 or max(width, height) <= TILE_PX:
        return None
    columns, rows = get_optimal_tiled_canvas(
        (height, width), (TILE_PX, TILE_PX), preset.min_tiles, preset.max_tiles
    )
    return int(columns), int(rows)

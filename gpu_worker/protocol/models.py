"""`/v1/models`: each model id with its presets (token budgets) and tasks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gpu_worker.protocol.tasks import DEFAULT_MODE, MODES


class ModePresetCard(BaseModel):
    name: str
    max_tiles: int
    image_tokens: int = Field(description="The most image tokens a page costs at this preset (a ceiling).")
    description: str = Field(description="What the preset costs, in words: up to N image tokens.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "deepseek-ocr-service"
    engine: str
    tasks: list[str]
    modes: list[ModePresetCard]
    default_mode: str = DEFAULT_MODE


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def mode_cards() -> list[ModePresetCard]:
    """Every preset with its token budget, smallest first."""
    return [
        ModePresetCard(
            name=m.name,
            max_tiles=m.max_tiles,
            image_tokens=m.image_tokens,
            # a ceiling: the grid nearest the page's shape may use fewer tiles (docs/presets.md)
            description=f"up to {m.image_tokens} image tokens (global view"
            + (f" + up to {m.max_tiles} tiles of 768 px)" if m.max_tiles else " only)"),
        )
        for m in MODES.values()
    ]

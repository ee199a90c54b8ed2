"""`/v1/models`: each model id with its presets (token budgets) and tasks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from gpu_worker.protocol.tasks import DEFAULT_MODE, MODES


class ModePresetCard(BaseModel):
    name: str
    max_tiles: int
    image_tokens: int


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
        ModePresetCard(name=m.name, max_tiles=m.max_tiles, image_tokens=m.image_tokens)
        for m in MODES.values()
    ]

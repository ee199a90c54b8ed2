"""Settings: each deployable reads its own settings object once, the same way."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

SettingsT = TypeVar("SettingsT", bound=BaseModel)


def read_settings(cls: type[SettingsT], label: str, **overrides: Any) -> SettingsT:
    """Build a settings object from the environment, exiting with one clear line per bad value."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"invalid {label} settings: {problems}") from None

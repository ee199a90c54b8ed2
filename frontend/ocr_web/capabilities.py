"""What the serving engine can do, read from `/v1/models`, worded for the page (no hard-coded promises)."""

from __future__ import annotations

from typing import Any

from gpu_worker.protocol import MODES, TASKS

TASK_LABELS = {
    "markdown": "Markdown (layout, tables, boxes)",
    "ocr": "Plain text",
    "figure": "Parse a figure or chart",
    "describe": "Describe the image",
    "locate": "Locate a text (boxes)",
    "custom": "Custom prompt",
}
ENGINE_NAMES = {"deepseek": "DeepSeek-OCR-2", "rapidocr": "RapidOCR (CPU)"}
# Engines that take a free prompt (a text part without `task`); the API answers 400 elsewhere.
FREE_PROMPT_ENGINES = {"deepseek"}
# Engines whose output arrives token by token; the others send the text when the page is done.
STREAMING_ENGINES = {"deepseek"}
# Engines that read the page at the preset's resolution; the others ignore the preset.
PRESET_ENGINES = {"deepseek"}


def mode_label(name: str, image_tokens: int) -> str:
    """A preset as a ceiling, never a promise: the processor may pick fewer tiles."""
    return f"{name}: up to {image_tokens} tokens"


def capabilities(models: dict[str, Any] | None) -> dict[str, Any]:
    """The engine's tasks, presets and limits from a `/v1/models` answer (None: the worker is not reachable)."""
    cards = (models or {}).get("data") or []
    card = next((c for c in cards if c.get("id") != "deepseek-ocr"), cards[0] if cards else {})
    engine = str(card.get("engine") or "")
    tasks = [t for t in card.get("tasks") or [] if t in TASKS]
    if engine in FREE_PROMPT_ENGINES:
        tasks.append("custom")
    modes = card.get("modes") or [{"name": m.name, "image_tokens": m.image_tokens} for m in MODES.values()]
    name = ENGINE_NAMES.get(engine, engine or "unknown engine")
    known = bool(engine)
    return {
        "engine": engine,
        "engine_name": name,
        "model": str(card.get("id") or ""),
        "tasks": tasks if known else list(TASKS),
        "task_options": [
            {
                "name": t,
                "label": TASK_LABELS[t]
                if (t in tasks or not known)
                else f"{TASK_LABELS[t]}: needs DeepSeek-OCR (GPU)",
                "enabled": (t in tasks) or not known,
            }
            for t in TASK_LABELS
        ],  # fmt: skip
        "modes": [
            {
                "name": m["name"],
                "label": mode_label(m["name"], int(m["image_tokens"])),
                "tokens": int(m["image_tokens"]),
            }
            for m in modes
        ],  # fmt: skip
        "default_mode": str(card.get("default_mode") or "gundam"),
        "streams": engine in STREAMING_ENGINES,
        "presets_matter": engine in PRESET_ENGINES or not known,
        "cpu_note": cpu_note(engine, tasks) if known else "",
    }


def cpu_note(engine: str, tasks: list[str]) -> str:
    """The visible warning when this server is not running DeepSeek-OCR (the CPU fallback)."""
    if engine == "deepseek":
        return ""
    missing = [t for t in TASKS if t not in tasks]
    gone = ", ".join(TASK_LABELS[t].split(" (")[0].lower() for t in missing) or "nothing"
    return (
        f"This server reads with {ENGINE_NAMES.get(engine, engine)}, not DeepSeek-OCR: it has no GPU. "
        f"Not available here: {gone}, and custom prompts. The size presets all give the same result, "
        "markdown is the lines in reading order (no tables), and the text arrives when the page is done."
    )


def task_note(task: str, caps: dict[str, Any]) -> str:
    """Why a task is off on this engine (empty when it is on)."""
    if task in caps["tasks"] or not caps["engine"]:
        return ""
    return (
        f"{TASK_LABELS.get(task, task)} needs DeepSeek-OCR on a GPU; this server runs {caps['engine_name']}."
    )

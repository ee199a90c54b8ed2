"""Read one page from the command line: `python -m gpu_worker.cli IMAGE [options]`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid

from gpu_worker.annotate import annotate_png
from gpu_worker.engines import EngineLoadError, create_engine
from gpu_worker.intake import read_image_file
from gpu_worker.protocol import DEFAULT_MODE, MODES_ORDER, TASKS, ServiceError, build_prompt
from gpu_worker.settings import load_settings
from gpu_worker.types import OcrRequest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m gpu_worker.cli", description="OCR one page image.")
    parser.add_argument("image", help="PNG, JPEG or WebP file")
    parser.add_argument("--task", choices=TASKS, default="markdown")
    parser.add_argument("--mode", choices=MODES_ORDER, default=DEFAULT_MODE)
    parser.add_argument("--ref-text", help="text to find (task locate)")
    parser.add_argument(
        "--engine", choices=("auto", "deepseek", "rapidocr"), help="default: OCR_ENGINE or auto"
    )
    parser.add_argument("--max-tokens", type=int, help="cap on generated tokens")
    parser.add_argument("--annotated", metavar="OUT.png", help="write the page with its boxes drawn")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    return parser.parse_args(argv)


class InputFileError(Exception):
    """The file named on the command line cannot be used; the message is one line for a person."""


def check_input_file(path: str, max_bytes: int) -> None:
    """Refuse a missing, unreadable or oversize file with its own size, before anything is loaded."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except PermissionError:
        raise InputFileError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if os.path.isdir(path):
        raise InputFileError(f"{path}: is a folder, not an image file")
    if size > max_bytes:
        raise InputFileError(f"{path} is {_size(size)}; the limit is {_size(max_bytes)} (MAX_IMAGE_BYTES)")


def _size(n: int) -> str:
    """Bytes for a person: exact below 1 MiB, else MiB with two decimals and the exact count."""
    return f"{n} bytes" if n < 2**20 else f"{n / 2**20:.2f} MiB ({n} bytes)"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; exit 0 on success, 2 with one line on stderr on bad input or failure."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    try:
        prompt = build_prompt(args.task, args.ref_text)
        check_input_file(args.image, settings.max_image_bytes)
        image = read_image_file(
            args.image, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        )
        engine = create_engine(settings, args.engine)
        engine.check_task(prompt.task)
        engine.load()
        request = OcrRequest(
            request_id=uuid.uuid4().hex,
            image=image,
            task=prompt.task,
            mode=args.mode,
            prompt=prompt.text,
            ref_text=prompt.ref_text,
            max_new_tokens=args.max_tokens,
        )
        result = engine.run([request])[0]
        if result.error is not None:
            raise result.error
        if args.annotated:
            with open(args.annotated, "wb") as handle:
                handle.write(annotate_png(image, result.boxes))
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except InputFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # e.g. the --annotated path: name the file and the reason, never a raw "[Errno N]".
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except (EngineLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        payload = {
            "engine": engine.name,
            "model": engine.model_id,
            "task": prompt.task,
            "mode": args.mode,
            "image": {"width": image.width, "height": image.height},
            "text": result.text,
            "raw": result.raw,
            "boxes": [box.model_dump() for box in result.boxes],
            "finish_reason": result.finish_reason,
            "repetition_detected": result.repetition_detected,
            "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens},
            "inference_ms": round(result.inference_ms, 1),
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        print(result.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

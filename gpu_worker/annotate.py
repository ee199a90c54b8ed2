"""Draw boxes on a copy of the page: a colour per label, readable labels; PNG bytes out."""

from __future__ import annotations

import io
import zlib
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from gpu_worker.protocol import Box

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 160, 160), (240, 50, 230), (128, 128, 0), (0, 0, 128), (170, 110, 40),
)  # fmt: skip


def label_colour(label: str) -> tuple[int, int, int]:
    """A stable colour for a label (the same label is the same colour in every image)."""
    return PALETTE[zlib.crc32(label.encode("utf-8")) % len(PALETTE)]


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def annotate(image: Image.Image, boxes: list[Box]) -> Image.Image:
    """A copy of the image with each box outlined and labelled."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    scale = max(canvas.size) / 1000
    line = max(2, round(2 * scale))
    font = _font(max(12, round(14 * scale)))
    for box in boxes:
        x1, y1, x2, y2 = box.bbox
        colour = label_colour(box.label)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
        caption = box.label if len(box.label) <= 40 else box.label[:39] + "…"
        left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
        tw, th = right - left, bottom - top
        # The caption sits above the box, or inside it when the box touches the top edge.
        ty = y1 - th - 4 if y1 - th - 4 >= 0 else y1
        draw.rectangle((x1, ty, x1 + tw + 6, ty + th + 4), fill=colour)
        draw.text((x1 + 3 - left, ty + 2 - top), caption, fill=(255, 255, 255), font=font)
    return canvas


def annotate_png(image: Image.Image, boxes: list[Box]) -> bytes:
    """The annotated page as PNG bytes."""
    buffer = io.BytesIO()
    annotate(image, boxes).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()

"""Rendered documents with known text and known line positions (PIL + DejaVu fonts)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

FONT = "DejaVuSans.ttf"


@dataclass(frozen=True)
class RenderedLine:
    text: str
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class RenderedDocument:
    image: Image.Image
    lines: list[RenderedLine]

    def png(self) -> bytes:
        """The page as PNG bytes."""
        return to_bytes(self.image, "PNG")


def to_bytes(image: Image.Image, fmt: str, **params: object) -> bytes:
    """Encode an image."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def render_document(
    lines: list[str], *, width: int = 900, font_size: int = 34, margin: int = 50, spacing: int = 40
) -> RenderedDocument:
    """A white page with one line of black text per entry; returns the page and each line's box."""
    font = ImageFont.truetype(FONT, font_size)
    height = margin * 2 + len(lines) * (font_size + spacing)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    placed = []
    y = margin
    for text in lines:
        draw.text((margin, y), text, font=font, fill="black")
        placed.append(RenderedLine(text, tuple(int(v) for v in draw.textbbox((margin, y), text, font=font))))  # type: ignore[arg-type]
        y += font_size + spacing
    return RenderedDocument(image, placed)


def overlap(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> float:
    """Intersection over the smaller box's area (1.0: one box lies inside the other)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / smaller if smaller else 0.0

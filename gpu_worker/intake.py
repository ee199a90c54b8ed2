"""Image intake shared by every entry point: bytes in, a safe RGB page out, or a typed error."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from gpu_worker.protocol import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
# Tell PIL our own limit is in charge; its warning-level bomb check would only log.
Image.MAX_IMAGE_PIXELS = None


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode PNG/JPEG/WebP bytes into an upright RGB image within the byte and pixel limits."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The image is {len(data)} bytes; the limit is {max_bytes}.", param="messages")
    if not data:
        raise InvalidRequest("The image is empty.", param="messages", code="empty_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise UnsupportedMediaType(
            "The file is not a PNG, JPEG or WebP image we can read.", param="messages"
        ) from None
    except Exception as exc:  # a corrupt header can raise nearly anything inside PIL
        raise InvalidRequest(
            f"The image could not be read ({type(exc).__name__}).", param="messages"
        ) from None
    width, height = image.size
    # The header is all PIL has read so far: refuse bombs before decoding a single pixel.
    if width <= 0 or height <= 0:
        raise InvalidRequest("The image has no pixels.", param="messages", code="empty_image")
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"The image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}.",
            param="messages",
            code="too_many_pixels",
        )
    try:
        image.seek(0)  # animated WebP/PNG: the first frame is the page
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # in place: without EXIF rotation, no copy of the page
        return to_rgb(image)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise InvalidRequest(
            f"The image is truncated or corrupt ({type(exc).__name__}).",
            param="messages",
            code="corrupt_image",
        ) from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: alpha over white, CMYK converted, 16-bit and float scaled."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Scale the real value range to 0..255 instead of clipping (16-bit scans are mostly > 255).
        gray = image.convert("F") if mode != "F" else image
        lo, hi = gray.getextrema()
        lo_f, hi_f = float(lo), float(hi)  # type: ignore[arg-type]
        scale = 255.0 / (hi_f - lo_f) if hi_f > lo_f else 0.0
        return gray.point(lambda v: (v - lo_f) * scale).convert("L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("RGBA", "LA", "PA") or image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def read_image_file(path: str, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Read and decode an image file with the same rules as the API (the CLI's entry)."""
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)

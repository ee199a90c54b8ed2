import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from gpu_worker.intake import decode_image
from gpu_worker.protocol import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from tests.utils.documents import to_bytes

LIMITS = {"max_bytes": 5 * 1024 * 1024, "max_pixels": 4_000_000}


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size; decoding it would need gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_plain_png_decodes_to_rgb():
    image = decode_image(to_bytes(Image.new("RGB", (30, 20), "red"), "PNG"), **LIMITS)
    assert image.mode == "RGB" and image.size == (30, 20)


def test_decompression_bomb_is_refused_from_the_header():
    with pytest.raises(PayloadTooLarge) as err:
        decode_image(png_header_only(100_000, 100_000), **LIMITS)
    assert err.value.code == "too_many_pixels"


def test_oversize_bytes_are_refused():
    with pytest.raises(PayloadTooLarge):
        decode_image(b"\x00" * 101, max_bytes=100, max_pixels=10)


def test_empty_input_is_refused():
    with pytest.raises(InvalidRequest):
        decode_image(b"", **LIMITS)


@pytest.mark.parametrize("data", [b"hello world", b"%PDF-1.7\n", b"GIF89a" + b"\x00" * 20])
def test_non_images_are_unsupported_media(data):
    with pytest.raises(UnsupportedMediaType):
        decode_image(data, **LIMITS)


def test_gif_is_not_accepted():
    with pytest.raises(UnsupportedMediaType):
        decode_image(to_bytes(Image.new("P", (10, 10)), "GIF"), **LIMITS)


def test_truncated_png_is_a_clear_400():
    data = to_bytes(Image.effect_noise((200, 200), 50).convert("RGB"), "PNG")
    with pytest.raises(InvalidRequest) as err:
        decode_image(data[: len(data) // 2], **LIMITS)
    assert err.value.status == 400


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (20, 20), (0, 255, 255, 0))  # pure red in CMYK
    image = decode_image(to_bytes(cmyk, "JPEG"), **LIMITS)
    assert image.mode == "RGB"
    r, g, b = image.getpixel((10, 10))
    assert r > 200 and g < 60 and b < 60


def test_16bit_png_is_scaled_not_clipped():
    values = np.full((10, 20), 1000, dtype=np.uint16)
    values[:, 10:] = 60000
    gray = Image.fromarray(values)
    assert gray.mode.startswith("I;16")
    image = decode_image(to_bytes(gray, "PNG"), **LIMITS)
    assert image.mode == "RGB"
    assert image.getpixel((15, 5))[0] == 255
    assert image.getpixel((5, 5))[0] == 0


def test_alpha_is_composited_over_white():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image = decode_image(to_bytes(rgba, "PNG"), **LIMITS)
    assert image.getpixel((5, 5)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_over_white():
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([0, 0, 0] * 256)
    data = to_bytes(pal, "PNG", transparency=0)
    assert decode_image(data, **LIMITS).getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    landscape = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    image = decode_image(to_bytes(landscape, "JPEG", exif=exif), **LIMITS)
    assert image.size == (20, 40)


def test_webp_and_animated_webp_take_the_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ("blue", "red")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    image = decode_image(buffer.getvalue(), **LIMITS)
    assert image.size == (16, 16)
    assert image.getpixel((8, 8))[2] > 200

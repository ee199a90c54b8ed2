import io

from PIL import Image

from gpu_worker.annotate import annotate, annotate_png, label_colour
from gpu_worker.protocol import Box


def test_box_outline_is_drawn_in_the_label_colour_where_the_box_is():
    page = Image.new("RGB", (400, 300), "white")
    out = annotate(page, [Box(label="title", bbox=[100, 100, 300, 200])])
    colour = label_colour("title")
    assert out.getpixel((100, 150)) == colour  # left edge
    assert out.getpixel((300, 150)) == colour  # right edge
    assert out.getpixel((200, 200)) == colour  # bottom edge
    assert out.getpixel((200, 150)) == (255, 255, 255)  # inside stays untouched
    assert out.getpixel((20, 280)) == (255, 255, 255)  # far away too
    assert page.getpixel((100, 150)) == (255, 255, 255)  # the original is not modified


def test_label_caption_sits_above_the_box():
    page = Image.new("RGB", (400, 300), "white")
    out = annotate(page, [Box(label="table", bbox=[100, 100, 300, 200])])
    above = [out.getpixel((x, 90)) for x in range(101, 130)]
    assert any(p != (255, 255, 255) for p in above)


def test_labels_get_stable_distinct_colours():
    assert label_colour("text") == label_colour("text")
    assert len({label_colour(x) for x in ("text", "title", "table", "image")}) >= 3


def test_png_bytes_roundtrip_and_box_at_the_top_edge():
    page = Image.new("RGB", (200, 100), "white")
    png = annotate_png(page, [Box(label="x" * 80, bbox=[0, 0, 199, 99])])
    assert png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).size == (200, 100)

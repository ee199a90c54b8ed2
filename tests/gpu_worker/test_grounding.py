from gpu_worker.grounding import boxes_as_text, parse_grounded, to_pixels

MARKDOWN = (
    "<|ref|>title<|/ref|><|det|>[[100, 50, 900, 120]]<|/det|>\n# Annual report\n\n"
    "<|ref|>text<|/ref|><|det|>[[100, 150, 900, 300]]<|/det|>\nRevenue grew by 12%.\n\n"
    "<|ref|>table<|/ref|><|det|>[[100, 320, 900, 700]]<|/det|>\n"
    "<table><tr><td>Q1</td><td>10</td></tr></table>"
)


def test_markdown_with_grounding_gives_clean_text_and_pixel_boxes():
    text, boxes = parse_grounded(MARKDOWN, width=999 * 2, height=999)
    assert text == "# Annual report\n\nRevenue grew by 12%.\n\n<table><tr><td>Q1</td><td>10</td></tr></table>"
    assert [b.label for b in boxes] == ["title", "text", "table"]
    assert boxes[0].bbox == [200, 50, 1800, 120]


def test_several_boxes_per_label():
    raw = "<|ref|>the cat<|/ref|><|det|>[[0, 0, 999, 999], [10, 20, 30, 40]]<|/det|>"
    text, boxes = parse_grounded(raw, width=1000, height=500)
    assert text == ""
    assert [b.bbox for b in boxes] == [[0, 0, 1000, 500], [10, 10, 30, 20]]
    assert {b.label for b in boxes} == {"the cat"}


def test_truncated_output_keeps_complete_boxes_and_drops_the_partial_tag():
    raw = "<|ref|>text<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\nHello\n<|ref|>text<|/ref|><|det|>[[5, 6, 7, 8]], [[9, 10"
    text, boxes = parse_grounded(raw, width=999, height=999)
    assert text == "Hello"
    assert [b.bbox for b in boxes] == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_truncated_inside_a_tag():
    text, boxes = parse_grounded("Some text <|de", 999, 999)
    assert text == "Some text"
    assert boxes == []


def test_malformed_coordinates_are_skipped_never_evaluated():
    raw = "<|ref|>x<|/ref|><|det|>[[__import__('os').system('id')]], [[1,2,3]], [[a,b,c,d]]<|/det|>tail"
    text, boxes = parse_grounded(raw, 999, 999)
    assert boxes == []
    assert text == "tail"


def test_coordinates_are_clamped_and_ordered():
    assert to_pixels((1500, -20, 100, 2000), 999, 999) == [100, 0, 999, 999]


def test_leftover_special_tokens_are_removed():
    text, _ = parse_grounded("Hello<｜end▁of▁sentence｜>", 10, 10)
    assert text == "Hello"


def test_boxes_as_text():
    _, boxes = parse_grounded("<|ref|>total<|/ref|><|det|>[[0, 0, 999, 999]]<|/det|>", 100, 50)
    assert boxes_as_text(boxes) == "total: [0, 0, 100, 50]"

from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_worker.grounding import StreamCleaner, boxes_as_text, parse_grounded, to_pixels

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
    _, boxes = parse_grounded("<|ref|>total<|/ref|><|det|>[[0, 0, 999, 999]]<|/det|>", 100, 50, locate=True)
    assert boxes_as_text(boxes) == "total: [0, 0, 100, 50]"


# ---- text per box ----------------------------------------------------------------------------------


def test_each_box_carries_the_text_that_follows_its_block():
    _, boxes = parse_grounded(MARKDOWN, width=999, height=999)
    assert [b.text for b in boxes] == [
        "# Annual report",
        "Revenue grew by 12%.",
        "<table><tr><td>Q1</td><td>10</td></tr></table>",
    ]


def test_a_block_with_no_text_after_it_has_none_and_several_boxes_share_their_text():
    raw = (
        "<|ref|>image<|/ref|><|det|>[[0, 0, 10, 10]]<|/det|>\n\n"
        "<|ref|>text<|/ref|><|det|>[[0, 20, 10, 30], [0, 40, 10, 50]]<|/det|>\nTwo lines<｜end▁of▁sentence｜>"
    )
    _, boxes = parse_grounded(raw, 999, 999)
    assert [b.text for b in boxes] == [None, "Two lines", "Two lines"]


def test_an_answer_that_is_only_boxes_gives_each_box_its_label_as_text():
    # DeepSeek's answer to "Locate <|ref|>Total due<|/ref|>": the ref echoed, then where it is.
    raw = "<|ref|>Total due<|/ref|><|det|>[[100, 200, 300, 250], [100, 600, 300, 650]]<|/det|>"
    text, boxes = parse_grounded(raw, 999, 999, locate=True)
    assert text == "" and [b.text for b in boxes] == ["Total due", "Total due"]


def test_a_markdown_page_of_pictures_only_has_no_text_and_its_boxes_none():
    # Grounded markdown of a page that is only figures: the labels are block kinds, not text read.
    raw = "<|ref|>image<|/ref|><|det|>[[0, 0, 500, 400]]<|/det|>\n\n<|ref|>image<|/ref|><|det|>[[0, 500, 500, 900]]<|/det|>"
    text, boxes = parse_grounded(raw, 999, 999)
    assert (
        text == "" and [b.text for b in boxes] == [None, None] and [b.label for b in boxes] == ["image"] * 2
    )


def test_a_truncated_block_text_drops_the_cut_off_tag():
    raw = "<|ref|>text<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\nHello <|de"
    _, boxes = parse_grounded(raw, 999, 999)
    assert boxes[0].text == "Hello"


def test_box_text_on_a_rendered_page_through_the_tiny_model_shape():
    """Grounded output about a rendered page: every box's text is that page line, in order."""
    from tests.utils.documents import render_document

    lines = ["Invoice number 48213", "Shipping address", "Total amount due"]
    page = render_document(lines)
    width, height = page.image.size
    raw = "".join(
        f"<|ref|>text<|/ref|><|det|>[[{round(x1 * 999 / width)}, {round(y1 * 999 / height)}, "
        f"{round(x2 * 999 / width)}, {round(y2 * 999 / height)}]]<|/det|>\n{line.text}\n\n"
        for line in page.lines
        for x1, y1, x2, y2 in [line.bbox]
    )
    text, boxes = parse_grounded(raw, width, height)
    assert text == "\n\n".join(lines)
    assert [b.text for b in boxes] == lines
    for box, line in zip(boxes, page.lines, strict=True):
        assert all(abs(a - b) <= 2 for a, b in zip(box.bbox, line.bbox, strict=True))


# ---- the stream cleaner ----------------------------------------------------------------------------


def cleaned(pieces):
    """What a stream sends for these raw pieces: every delta, checked to stay a prefix of the final text."""
    final = parse_grounded("".join(pieces), 999, 999)[0]
    cleaner = StreamCleaner()
    sent = ""
    for piece in pieces:
        sent += cleaner.feed(piece)
        assert final.startswith(sent), (sent, final)
    return sent + cleaner.finish(final), final, cleaner


LONG = (
    MARKDOWN
    + "\n\n"
    + "".join(
        f"<|ref|>text<|/ref|><|det|>[[{i}, {i}, {i + 9}, {i + 9}]]<|/det|>\nLine {i} <b>bold</b> x<y\n\n\n\n"
        f"<|ref|>table<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\n<table><tr><td>{i}</td></tr></table>\n"
        for i in range(40)
    )
    + "<|ref|>text<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\nend <｜end▁of▁sentence｜>"
)


def test_a_long_grounded_stream_split_at_every_position_adds_up_to_the_final_content():
    for cut in range(len(LONG)):
        sent, final, _ = cleaned([LONG[:cut], LONG[cut:]])
        assert sent == final, cut
    sent, final, _ = cleaned(list(LONG))  # one character per piece
    assert sent == final and "<|" not in sent


def test_the_cleaner_sends_text_as_it_comes_and_keeps_only_a_short_tail():
    cleaner = StreamCleaner()
    sent, longest_tail = "", 0
    for char in LONG:
        sent += cleaner.feed(char)
        longest_tail = max(longest_tail, len(cleaner.tail))
    final = parse_grounded(LONG, 999, 999)[0]
    assert len(sent) > len(final) - 40  # all but the last line was sent before the end
    assert longest_tail < 120  # settled text is never read again: each piece costs about its own length


def test_a_truncated_open_ref_waits_and_a_cut_off_tag_is_never_sent():
    for raw in ["Hello\n<|ref|>unfinished label\nmore", "Text <|de", "Text <|ref|>a<|/ref|>\n\n<|de",
                "a <|x<|y|>|> b", "<image>\n\n\nx\n<", "x<|/ref|>y"]:  # fmt: skip
        for cut in range(len(raw) + 1):
            sent, final, _ = cleaned([raw[:cut], raw[cut:]])
            assert sent == final, (raw, cut)


FRAGMENTS = ["<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "[[1, 2, 3, 4]]", "<|", "|>", "<", ">", "\n",
             "\n\n\n", " ", "a", "Bc", "<td>", "<image>", "<ima", "<｜end▁of▁sentence｜>", "<｜", "｜>", "<|de"]  # fmt: skip


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30), st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=400, deadline=None)
def test_any_mix_of_tags_split_anywhere_adds_up_to_the_final_content(fragments, cuts):
    raw = "".join(fragments)
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    sent, final, _ = cleaned([raw[a:b] for a, b in zip(points, points[1:], strict=False)])
    assert sent == final

import pytest

from gpu_worker.engines.rapid import Line, matches, reading_order
from gpu_worker.protocol import InvalidRequest
from gpu_worker.types import OcrRequest
from tests.utils.documents import overlap, render_document

LINES = ["Invoice number 48213", "Shipping address", "Total amount due", "Thank you for your order"]


def request(doc, task, ref_text=None, max_new_tokens=None, stream=False):
    return OcrRequest(
        "r1", doc.image, task, "gundam", "", ref_text=ref_text, max_new_tokens=max_new_tokens, stream=stream
    )


@pytest.fixture(scope="module")
def document():
    return render_document(LINES)


def test_ocr_reads_the_rendered_lines_in_order(rapid_engine, document):
    result = rapid_engine.run([request(document, "ocr")])[0]
    assert result.error is None
    assert result.text.splitlines() == LINES
    assert result.finish_reason == "stop"


def test_markdown_separates_lines_as_paragraphs(rapid_engine, document):
    result = rapid_engine.run([request(document, "markdown")])[0]
    assert result.text == "\n\n".join(LINES)
    assert len(result.boxes) == len(LINES)


def test_locate_returns_a_box_on_the_true_line_only(rapid_engine, document):
    result = rapid_engine.run([request(document, "locate", ref_text="total AMOUNT  due")])[0]
    assert len(result.boxes) == 1
    box = result.boxes[0].bbox
    truth = {line.text: line.bbox for line in document.lines}
    assert overlap(box, truth["Total amount due"]) > 0.8
    assert all(overlap(box, truth[t]) == 0 for t in LINES if t != "Total amount due")


def test_locate_text_that_is_not_there_finds_nothing(rapid_engine, document):
    result = rapid_engine.run([request(document, "locate", ref_text="purchase order")])[0]
    assert result.boxes == []


def test_unsupported_task_fails_alone_and_names_the_engine(rapid_engine, document):
    results = rapid_engine.run([request(document, "describe"), request(document, "ocr")])
    assert isinstance(results[0].error, InvalidRequest)
    assert "rapidocr" in str(results[0].error)
    assert results[1].error is None and results[1].text


def test_token_cap_cuts_the_text_and_says_length(rapid_engine, document):
    result = rapid_engine.run([request(document, "ocr", max_new_tokens=3)])[0]
    assert result.text == "Invoice number 48213"
    assert result.finish_reason == "length"


def test_on_token_receives_the_text_of_the_rows_that_stream(rapid_engine, document):
    pieces = []
    batch = [request(document, "ocr"), request(document, "ocr", stream=True)]
    rapid_engine.run(batch, on_token=lambda row, piece: pieces.append((row, piece)))
    assert {row for row, _ in pieces} == {1}
    assert "".join(p for _, p in pieces).splitlines() == LINES


def test_reading_order_groups_a_row_left_to_right():
    lines = [
        Line("right", [300, 10, 400, 40]),
        Line("below", [0, 60, 100, 90]),
        Line("left", [0, 12, 100, 38]),
    ]
    assert [[x.text for x in row] for row in reading_order(lines)] == [["left", "right"], ["below"]]


@pytest.mark.parametrize(
    "ref, line, expected",
    [
        ("total due", "Total Due: 12.00", True),
        ("TotalDue", "total due", True),
        ("invoice numbr", "Invoice number 48213", True),
        ("shipping", "Thank you for your order", False),
        ("", "anything", False),
    ],
)
def test_locate_matching_tolerates_case_spacing_and_small_errors(ref, line, expected):
    assert matches(ref, line) is expected


@pytest.mark.parametrize("size", [(12000, 8), (8, 12000), (3000, 20)])
def test_an_extreme_aspect_ratio_is_read_not_crashed(rapid_engine, size):
    from PIL import Image

    page = OcrRequest("thin", Image.new("RGB", size, "white"), "ocr", "gundam", "")
    result = rapid_engine.run([page])[0]
    assert result.error is None
    assert result.text == "" and result.boxes == []


def test_text_on_a_long_strip_is_still_found_inside_the_original_page(rapid_engine):
    doc = render_document(["Strip text"], width=600)
    strip = doc.image.crop((0, 0, 600, 60))
    from PIL import Image

    wide = Image.new("RGB", (6000, 60), "white")
    wide.paste(strip, (0, 0))
    result = rapid_engine.run([OcrRequest("strip", wide, "ocr", "gundam", "")])[0]
    assert result.error is None
    for box in result.boxes:
        assert 0 <= box.bbox[0] < box.bbox[2] <= 6000 and 0 <= box.bbox[1] < box.bbox[3] <= 60


def test_each_box_carries_the_text_of_its_line(rapid_engine, document):
    for task in ("ocr", "markdown"):
        result = rapid_engine.run([request(document, task)])[0]
        assert [box.text for box in result.boxes] == LINES
        for box, line in zip(result.boxes, document.lines, strict=True):
            assert overlap(box.bbox, line.bbox) > 0.8  # the text belongs to the box drawn around it


def test_a_located_box_carries_the_line_it_found(rapid_engine, document):
    result = rapid_engine.run([request(document, "locate", ref_text="total AMOUNT  due")])[0]
    assert [(box.label, box.text) for box in result.boxes] == [("total AMOUNT  due", "Total amount due")]

"""PDF intake: pages rendered upright at ~144 dpi within the pixel cap; hostile PDFs get clear 4xx answers."""

import threading

import pytest

from gpu_worker.documents import MAX_SIDE_PX, RenderedPage, render_pdf, render_scale
from gpu_worker.protocol import (
    InvalidRequest,
    PayloadTooLarge,
    parse_page_selection,
    resolve_pages,
)
from gpu_worker.types import OcrRequest
from tests.utils import pdfs

LIMITS = {"max_bytes": 20 * 2**20, "max_pages": 4, "dpi": 144, "max_pixels": 40_000_000}


def render(data, **overrides):
    return render_pdf(data, **{**LIMITS, **overrides})


@pytest.fixture(scope="module")
def mixed():
    data, texts = pdfs.mixed_document(4)
    return render(data), texts


def test_pages_render_at_144_dpi_in_order(mixed):
    pages, _ = mixed
    assert [p.number for p in pages] == [1, 2, 3, 4]
    # US Letter at 144 dpi; the rotated page (landscape media box, /Rotate 90) comes out portrait.
    assert [p.image.size for p in pages] == [(1224, 1584)] * 4
    assert all(p.image.mode == "RGB" for p in pages)


def test_every_page_reads_back_its_own_text(mixed, rapid_engine):
    pages, texts = mixed
    results = rapid_engine.run([ocr_request(page) for page in pages])
    for result, lines in zip(results, texts, strict=True):
        assert result.error is None
        read = " ".join(result.text.split()).lower()
        for line in lines:
            assert line.lower() in read, (line, result.text)


def ocr_request(page: RenderedPage) -> OcrRequest:
    return OcrRequest(request_id=f"p{page.number}", image=page.image, task="ocr", mode="gundam",
                      prompt="<image>\nFree OCR.")  # fmt: skip


def test_rotated_page_is_drawn_upright(mixed):
    # Text runs along the top-left of the displayed page; sideways text would ink a tall, narrow strip.
    page = mixed[0][2].image.convert("L")
    ink = page.point(lambda v: 255 if v < 128 else 0).getbbox()
    assert ink is not None
    left, top, right, bottom = ink
    assert right - left > 2 * (bottom - top)
    assert top < 300


def test_selected_pages_only(mixed):
    data, _ = pdfs.text_document(6)
    pages = render(data, selection=[2, 5], max_pages=2)
    assert [p.number for p in pages] == [2, 5]


def test_more_pages_than_allowed_is_413_with_the_hint():
    data, _ = pdfs.text_document(5)
    with pytest.raises(PayloadTooLarge) as info:
        render(data, limit_hint=" Send longer documents to /v1/jobs.")
    assert info.value.code == "too_many_pages" and "/v1/jobs" in info.value.message


def test_ten_thousand_declared_pages_is_413_before_rendering():
    data = pdfs.build_pdf([pdfs.Page(lines=["one real page"])], declared_count=10_000)
    with pytest.raises(PayloadTooLarge) as info:
        render(data)
    assert info.value.code == "too_many_pages"


def test_a_declared_page_that_does_not_exist_is_400():
    data = pdfs.build_pdf([pdfs.Page(lines=["one real page"])], declared_count=3)
    with pytest.raises(InvalidRequest) as info:
        render(data)
    assert info.value.code == "invalid_pdf" and "Page 2" in info.value.message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (pdfs.encrypted(pdfs.text_document(1)[0]), "pdf_encrypted"),
        (pdfs.text_document(2)[0][:400], "invalid_pdf"),
        (b"%PDF-1.7\nnothing else", "invalid_pdf"),
        (b"GIF89a not a pdf", "invalid_pdf"),
        (pdfs.zero_pages(), "invalid_pdf"),
    ],
    ids=["encrypted", "truncated", "header-only", "not-a-pdf", "zero-pages"],
)
def test_hostile_pdfs_are_clear_400s(data, code):
    with pytest.raises(InvalidRequest) as info:
        render(data)
    assert info.value.code == code and info.value.status == 400


def test_a_broken_pdf_after_an_encrypted_one_is_not_called_encrypted():
    # PDFium keeps its last error globally; the answer must describe this file, not the one before.
    with pytest.raises(InvalidRequest) as first:
        render(pdfs.encrypted(pdfs.text_document(1)[0]))
    assert first.value.code == "pdf_encrypted"
    for data in (pdfs.zero_pages(), pdfs.text_document(2)[0][:400]):
        with pytest.raises(InvalidRequest) as info:
            render(data)
        assert info.value.code == "invalid_pdf"


def test_owner_password_only_pdf_opens():
    import io

    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdfs.text_document(1)[0])))
    writer.encrypt(user_password="", owner_password="owner-only")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert len(render(buffer.getvalue())) == 1


def test_huge_page_is_capped_by_the_pixel_limit():
    (page,) = render(pdfs.huge_page(), max_pixels=4_000_000)
    width, height = page.image.size
    assert width * height <= 4_000_000 and width == height and width > 1900


def test_extreme_aspect_ratio_is_capped_per_side():
    scale = render_scale(14400, 3, dpi=144, max_pixels=40_000_000)
    assert 14400 * scale <= MAX_SIDE_PX


def test_over_the_byte_limit_is_413():
    data, _ = pdfs.text_document(1)
    with pytest.raises(PayloadTooLarge):
        render(data, max_bytes=len(data) - 1)


def test_threads_render_concurrently_without_crashing():
    data, _ = pdfs.text_document(2)
    sizes: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            sizes.extend(p.image.size for p in render(data, dpi=72))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sizes == [(612, 792)] * 12


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("1-3,7", [1, 2, 3, 7]), (" 2 , 2-3 ", [2, 3]), ("5", [5]), ("", None), (None, None)],
)
def test_page_selection_parses(spec, expected):
    assert parse_page_selection(spec, max_pages=500) == expected


@pytest.mark.parametrize("spec", ["0", "3-1", "a", "1-", "1,,2", "-2", "1.5", "1-2-3"])
def test_bad_page_selection_is_400(spec):
    with pytest.raises(InvalidRequest) as info:
        parse_page_selection(spec, max_pages=500)
    assert info.value.code == "invalid_pages" and info.value.param == "pages"


def test_page_selection_over_the_limit_is_413_without_expanding_it():
    with pytest.raises(PayloadTooLarge) as info:
        parse_page_selection("1-999999", max_pages=500)
    assert info.value.code == "too_many_pages"


@pytest.mark.parametrize("spec", ["1-300,1-300", "1-500,1-500", "1-300,200-500", "7,1-500,3"])
def test_overlapping_ranges_count_distinct_pages_against_the_limit(spec):
    assert parse_page_selection(spec, max_pages=500) == sorted(
        set(parse_page_selection(spec, max_pages=10_000))
    )
    assert len(parse_page_selection(spec, max_pages=500)) <= 500


def test_distinct_pages_over_the_limit_are_still_413():
    with pytest.raises(PayloadTooLarge) as info:
        parse_page_selection("1-300,1-300,301-501", max_pages=500)
    assert info.value.code == "too_many_pages" and "501 pages" in info.value.message


def test_selected_page_past_the_end_is_400():
    with pytest.raises(InvalidRequest) as info:
        resolve_pages([1, 9], total=3)
    assert info.value.code == "page_out_of_range"

"""The web app's backend client against the real edge and worker (inline and presigned upload paths)."""

import asyncio

import pytest
from PIL import Image

from ocr_web.edge import OcrFailed, human_message, run_ocr, sniff_image
from ocr_web.settings import FrontendSettings
from tests.utils.documents import render_document, to_bytes

LINES = ["Web app client page", "Line two"]


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_sniff_image_by_content(fmt, mime):
    assert sniff_image(to_bytes(Image.new("RGB", (4, 4)), fmt)) == mime
    assert sniff_image(b"%PDF-1.4") is None


@pytest.mark.parametrize("status, needle", [
    (401, "API key"), (413, "too large"), (415, "PNG, JPEG or WebP"), (429, "Try again in 3 s"),
    (502, "not available"), (503, "not available"), (504, "req-9"), (400, "refused: bad thing"), (500, "HTTP 500"),
])  # fmt: skip
def test_every_error_status_reads_as_words(status, needle):
    message = human_message(status, {"error": {"message": "bad thing"}}, "3", "req-9")
    assert needle in message
    assert "Traceback" not in message and "{" not in message


@pytest.mark.integration
@pytest.mark.parametrize("inline_max", [10_000_000, 1000], ids=["inline", "presigned-upload"])
def test_run_ocr_through_the_edge(edge_server, edge_keys, inline_max):
    settings = FrontendSettings(
        edge_url=edge_server.url, edge_api_key=edge_keys[0], inline_max_bytes=inline_max
    )
    reply = asyncio.run(run_ocr(settings, render_document(LINES).png(), "ocr", "small", None))
    assert reply["choices"][0]["message"]["content"].splitlines() == LINES
    assert reply["ocr"]["mode"] == "small"


@pytest.mark.integration
def test_wrong_key_and_unreachable_edge_are_worded(edge_server):
    page = render_document(LINES).png()
    with pytest.raises(OcrFailed, match="API key"):
        asyncio.run(
            run_ocr(
                FrontendSettings(edge_url=edge_server.url, edge_api_key="nope"), page, "ocr", "tiny", None
            )
        )
    with pytest.raises(OcrFailed, match="cannot be reached"):
        asyncio.run(
            run_ocr(
                FrontendSettings(edge_url="http://127.0.0.1:9", edge_api_key="k"), page, "ocr", "tiny", None
            )
        )
    with pytest.raises(OcrFailed, match="not a PNG"):
        asyncio.run(run_ocr(FrontendSettings(edge_url=edge_server.url), b"text", "ocr", "tiny", None))


@pytest.mark.integration
def test_streamed_reading_rebuilds_the_answer_and_reports_text_as_it_arrives(edge_server, edge_keys):
    settings = FrontendSettings(edge_url=edge_server.url, edge_api_key=edge_keys[0])
    seen: list[str] = []
    reply = asyncio.run(
        run_ocr(
            settings, render_document(LINES).png(), "ocr", "small", None, stream=True, on_text=seen.append
        )
    )
    assert reply["choices"][0]["message"]["content"].splitlines() == LINES
    assert seen and seen[-1] == reply["choices"][0]["message"]["content"]
    assert reply["ocr"]["request_id"] == reply["id"] and reply["choices"][0]["finish_reason"] == "stop"


@pytest.mark.integration
def test_a_free_prompt_is_sent_as_text_and_refused_in_words_by_an_engine_without_prompts(
    edge_server, edge_keys
):
    settings = FrontendSettings(edge_url=edge_server.url, edge_api_key=edge_keys[0])
    with pytest.raises(OcrFailed, match="refused"):
        asyncio.run(
            run_ocr(settings, render_document(LINES).png(), "custom", "small", None, prompt="List the dates.")
        )

import base64
import subprocess
import sys

import pytest
from pydantic import ValidationError

from gpu_worker.protocol import (
    MODES,
    ChatCompletionRequest,
    DataImage,
    InvalidRequest,
    PayloadTooLarge,
    S3Image,
    UnsupportedMediaType,
    build_prompt,
    parse_image_url,
    strip_special_tokens,
)

PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


def chat(content, **extra):
    return ChatCompletionRequest.model_validate(
        {"model": "deepseek-ocr", "messages": [{"role": "user", "content": content}], **extra}
    )


def image_part(url=PNG_URL):
    return {"type": "image_url", "image_url": {"url": url}}


def test_importing_the_contract_loads_no_heavy_library():
    code = (
        "import sys, gpu_worker.protocol\n"
        "heavy = [m for m in ('torch', 'transformers', 'PIL', 'numpy', 'rapidocr', 'fastapi') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_mode_presets_have_the_documented_token_budgets():
    assert {name: m.image_tokens for name, m in MODES.items()} == {
        "tiny": 257,
        "small": 545,
        "base": 689,
        "large": 833,
        "gundam": 1121,
    }


def test_task_builds_the_models_own_prompt():
    spec = chat([image_part()], task="ocr").to_ocr_request()
    assert spec.prompt == "<image>\nFree OCR."
    assert spec.mode == "gundam"


def test_no_task_and_no_text_means_markdown():
    spec = chat([image_part()]).to_ocr_request()
    assert spec.task == "markdown"
    assert spec.prompt == "<image>\n<|grounding|>Convert the document to markdown."


def test_user_text_becomes_the_prompt_with_special_tokens_stripped():
    spec = chat(
        [
            {"type": "text", "text": "<image>Read <|ref|>this<|/ref|> <｜end▁of▁sentence｜>please"},
            image_part(),
        ]
    ).to_ocr_request()
    assert spec.task == "custom"
    assert spec.prompt == "<image>\nRead this please"


def test_locate_without_ref_text_is_rejected():
    with pytest.raises(InvalidRequest) as err:
        chat([image_part()], task="locate").to_ocr_request()
    assert err.value.param == "ref_text"


def test_locate_ref_text_over_200_chars_is_rejected():
    with pytest.raises(InvalidRequest):
        chat([image_part()], task="locate", ref_text="x" * 201).to_ocr_request()


def test_locate_ref_text_is_cleaned_into_the_prompt():
    spec = chat([image_part()], task="locate", ref_text="  Total <|det|>due ").to_ocr_request()
    assert spec.prompt == "<image>\nLocate <|ref|>Total due<|/ref|> in the image."
    assert spec.ref_text == "Total due"


def test_ref_text_without_locate_is_rejected():
    with pytest.raises(InvalidRequest):
        chat([image_part()], task="ocr", ref_text="x").to_ocr_request()


@pytest.mark.parametrize("count", [0, 2])
def test_exactly_one_image_is_required(count):
    with pytest.raises(InvalidRequest) as err:
        chat([image_part()] * count + [{"type": "text", "text": "hi"}]).to_ocr_request()
    assert err.value.code == "image_count"


@pytest.mark.parametrize(
    "field, value", [("mode", "huge"), ("task", "translate"), ("n", 2), ("temperature", 3), ("max_tokens", 0)]
)
def test_out_of_range_fields_fail_schema_validation(field, value):
    with pytest.raises(ValidationError):
        chat([image_part()], **{field: value})


def test_special_tokens_that_reform_after_one_pass_are_removed():
    assert strip_special_tokens("<|re<|ref|>f|>x<im<image>age>") == "x"


def test_parse_data_url():
    parsed = parse_image_url(PNG_URL, max_bytes=100)
    assert parsed == DataImage("image/png", b"\x89PNG fake")


@pytest.mark.parametrize(
    "url, error",
    [
        ("data:image/png;base64,@@@", InvalidRequest),
        ("data:image/png,rawbytes", InvalidRequest),
        ("data:image/gif;base64,R0lG", UnsupportedMediaType),
        ("data:application/zip;base64,UEsDBA==", UnsupportedMediaType),
        ("data:image/png;base64,", InvalidRequest),
        ("https://example.com/a.png", InvalidRequest),
        ("file:///etc/passwd", InvalidRequest),
        ("s3://Bad_Bucket/x", InvalidRequest),
        ("s3://bucket/uploads/../results/x", InvalidRequest),
        ("data:image/png;base64," + "A" * 400, PayloadTooLarge),
    ],
)
def test_bad_image_urls_are_clear_errors(url, error):
    with pytest.raises(error):
        parse_image_url(url, max_bytes=200)


def test_a_pdf_data_url_is_read_as_a_document():
    assert parse_image_url("data:application/pdf;base64,JVBERg==", max_bytes=200) == DataImage(
        "application/pdf", b"%PDF"
    )


def test_the_openai_file_part_carries_a_pdf():
    url = "data:application/pdf;base64,JVBERg=="
    spec = chat(
        [{"type": "file", "file": {"file_data": url, "filename": "a.pdf"}}], task="ocr"
    ).to_ocr_request()
    assert spec.image_url == url


def test_a_file_part_with_bare_base64_is_taken_as_a_pdf():
    spec = chat([{"type": "file", "file": {"file_data": "JVBERg=="}}]).to_ocr_request()
    assert spec.image_url == "data:application/pdf;base64,JVBERg=="


def test_a_file_id_is_refused_with_a_hint():
    with pytest.raises(InvalidRequest) as info:
        chat([{"type": "file", "file": {"file_id": "file-abc"}}]).to_ocr_request()
    assert info.value.code == "unsupported_file_reference" and "/v1/uploads" in info.value.message


def test_an_image_and_a_pdf_together_are_refused():
    parts = [image_part(), {"type": "file", "file": {"file_data": "JVBERg=="}}]
    with pytest.raises(InvalidRequest) as info:
        chat(parts).to_ocr_request()
    assert info.value.code == "image_count"


def test_single_image_response_has_no_pages_key():
    from gpu_worker.protocol import ImageSize, OcrExtension, PageOcr

    ocr = OcrExtension(
        request_id="r", task="ocr", mode="gundam", engine="e", image=ImageSize(width=1, height=1), raw=""
    )
    assert "pages" not in ocr.model_dump() and '"pages"' not in ocr.model_dump_json()
    ocr.pages = [PageOcr(page=1, image=ImageSize(width=1, height=1), raw="", text="t")]
    assert ocr.model_dump()["pages"][0]["text"] == "t"


def test_parse_s3_reference():
    assert parse_image_url("s3://my-bucket/uploads/k1/abc", max_bytes=1) == S3Image(
        "my-bucket", "uploads/k1/abc"
    )


def test_unknown_task_in_build_prompt_is_rejected():
    with pytest.raises(InvalidRequest):
        build_prompt("translate")


def test_error_body_has_the_openai_shape():
    body = PayloadTooLarge("too big", param="messages").to_body()
    assert body == {
        "error": {
            "message": "too big",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "payload_too_large",
        }
    }

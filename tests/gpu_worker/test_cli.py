import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.utils.documents import render_document

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "gpu_worker.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"OCR_ENGINE": "rapidocr", "PATH": "/usr/bin:/bin", **env},
        timeout=120,
    )


def test_cli_prints_the_text_of_the_shipped_sample():
    out = cli(ROOT / "samples" / "invoice.png", "--task", "ocr")
    assert out.returncode == 0, out.stderr
    assert "Total due: 176.40 EUR" in out.stdout


def test_cli_json_locate_with_annotated_image(tmp_path):
    doc = render_document(["First line here", "Second line there"])
    page = tmp_path / "page.png"
    doc.image.save(page)
    annotated = tmp_path / "out.png"
    out = cli(page, "--task", "locate", "--ref-text", "second line", "--json", "--annotated", annotated)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["engine"] == "rapidocr"
    assert len(payload["boxes"]) == 1
    x1, y1, x2, y2 = payload["boxes"][0]["bbox"]
    drawn = Image.open(annotated).convert("RGB")
    assert drawn.getpixel((x1, (y1 + y2) // 2)) != (255, 255, 255)


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    out = cli(bad)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ")


def test_cli_missing_file_is_one_clean_line(tmp_path):
    missing = tmp_path / "missing.png"
    out = cli(missing)
    assert out.returncode == 2
    assert out.stderr == f"error: {missing}: no such file\n"
    assert "Errno" not in out.stderr


def test_cli_oversize_file_reports_its_own_size_and_the_limit(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(render_document(["Too big"]).png() + b"\0" * 5000)
    size = big.stat().st_size
    out = cli(big, MAX_IMAGE_BYTES="4000")
    assert out.returncode == 2
    assert out.stderr == f"error: {big} is {size} bytes; the limit is 4000 bytes (MAX_IMAGE_BYTES)\n"


def test_cli_megabyte_sizes_read_as_mib_with_the_exact_count(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (3 * 2**20 + 5))
    out = cli(big, MAX_IMAGE_BYTES=str(2 * 2**20))
    assert out.returncode == 2
    assert f"is 3.00 MiB ({3 * 2**20 + 5} bytes); the limit is 2.00 MiB ({2 * 2**20} bytes)" in out.stderr


def test_cli_unwritable_annotated_path_names_the_file(tmp_path):
    out = cli(ROOT / "samples" / "invoice.png", "--task", "ocr", "--annotated", tmp_path / "no" / "out.png")
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "out.png" in out.stderr and "Errno" not in out.stderr


def test_cli_bad_task_combination(tmp_path):
    out = cli(ROOT / "samples" / "invoice.png", "--task", "describe")
    assert out.returncode == 2 and "rapidocr" in out.stderr


def test_cli_ref_text_needs_locate_like_the_api():
    out = cli(ROOT / "samples" / "invoice.png", "--task", "ocr", "--ref-text", "total")
    assert out.returncode == 2 and "only used with task `locate`" in out.stderr

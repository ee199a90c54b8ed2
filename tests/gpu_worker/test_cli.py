import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.utils.documents import render_document

ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "gpu_worker.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"OCR_ENGINE": "rapidocr", "PATH": "/usr/bin:/bin"},
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


def test_cli_missing_file_and_bad_task_combination(tmp_path):
    assert cli(tmp_path / "missing.png").returncode == 2
    out = cli(ROOT / "samples" / "invoice.png", "--task", "describe")
    assert out.returncode == 2 and "rapidocr" in out.stderr


def test_cli_ref_text_needs_locate_like_the_api():
    out = cli(ROOT / "samples" / "invoice.png", "--task", "ocr", "--ref-text", "total")
    assert out.returncode == 2 and "only used with task `locate`" in out.stderr

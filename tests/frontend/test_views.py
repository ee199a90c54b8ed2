"""The web app's pure parts: capabilities from /v1/models, result views, history entries, download names."""

import json

from ocr_web import history
from ocr_web.capabilities import capabilities, task_note
from ocr_web.downloads import annotated_links, stem
from ocr_web.results import box_rows, grounded_texts, plain_text, tokens_label, view_of

MODES = [
    {"name": "tiny", "max_tiles": 0, "image_tokens": 257},
    {"name": "gundam", "max_tiles": 6, "image_tokens": 1121},
]


def models(engine, tasks):
    card = {"engine": engine, "tasks": tasks, "modes": MODES, "default_mode": "gundam"}
    return {"object": "list", "data": [{"id": engine, **card}, {"id": "deepseek-ocr", **card}]}


def test_rapidocr_capabilities_switch_off_what_it_cannot_do_and_say_so():
    caps = capabilities(models("rapidocr", ["markdown", "ocr", "locate"]))
    enabled = {o["name"]: o["enabled"] for o in caps["task_options"]}
    assert enabled == {"markdown": True, "ocr": True, "figure": False, "describe": False, "locate": True,
                       "custom": False}  # fmt: skip
    assert "no GPU" in caps["cpu_note"] and not caps["presets_matter"] and not caps["streams"]
    assert [m["label"] for m in caps["modes"]] == ["tiny: up to 257 tokens", "gundam: up to 1121 tokens"]
    assert "needs DeepSeek-OCR on a GPU" in task_note("describe", caps)
    assert task_note("ocr", caps) == ""


def test_deepseek_takes_every_task_and_free_prompts_with_no_cpu_note():
    caps = capabilities(models("deepseek", ["markdown", "ocr", "figure", "describe", "locate"]))
    assert all(o["enabled"] for o in caps["task_options"]) and "custom" in caps["tasks"]
    assert caps["cpu_note"] == "" and caps["streams"] and caps["presets_matter"]


def test_unknown_engine_offers_everything_without_claims():
    caps = capabilities(None)
    assert caps["engine"] == "" and caps["cpu_note"] == "" and all(o["enabled"] for o in caps["task_options"])


def test_grounded_output_gives_each_box_its_text():
    raw = "<|ref|>title<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\n# Invoice\n\n<|ref|>text<|/ref|><|det|>[[5, 6, 7, 8], [9, 9, 9, 9]]<|/det|>\nTotal 42"
    assert grounded_texts(raw) == ["# Invoice", "Total 42", "Total 42"]
    boxes = [{"label": "title", "bbox": [0, 0, 50, 10]}, {"label": "text", "bbox": [0, 20, 100, 40]},
             {"label": "text", "bbox": [10, 50, 20, 60]}]  # fmt: skip
    rows = box_rows(boxes, raw, "markdown", 200, 100)
    assert [r["text"] for r in rows] == ["# Invoice", "Total 42", "Total 42"]
    assert rows[1]["left"] == "0.000%" and rows[1]["top"] == "20.000%" and rows[1]["width"] == "50.000%"


def test_box_text_from_the_api_wins_and_mismatched_counts_give_none():
    rows = box_rows([{"label": "text", "bbox": [0, 0, 1, 1], "text": "given"}, {"label": "text", "bbox": [0, 0, 1, 1]}],
                    "no tags here", "ocr", 10, 10)  # fmt: skip
    assert [r["text"] for r in rows] == ["given", ""]


def reply(task, content, boxes=(), **ocr):
    return {"id": "req-1", "model": "rapidocr", "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
            "ocr": {"request_id": "req-1", "task": task, "mode": "gundam", "engine": "rapidocr", "raw": content,
                    "image": {"width": 100, "height": 50}, "boxes": list(boxes), **ocr}}  # fmt: skip


def test_locate_without_boxes_says_not_found_and_plain_text_is_marked_plain():
    view = view_of(reply("locate", ""), {}, "zebra")
    assert view["not_found"] == "“zebra” was not found on this page."
    assert view_of(reply("ocr", "a\nb"), {})["plain"] is True
    assert view_of(reply("markdown", "a"), {})["plain"] is False


def test_tokens_per_page_are_shown_against_the_ceiling_when_reported():
    assert (
        tokens_label({"image_tokens": 545, "tiles": [2, 1]}, 1121)
        == "Vision tokens: 545 (2×1 tiles) of up to 1121"
    )
    assert tokens_label({}, 1121) == "Vision tokens: not reported by this engine"
    assert (
        tokens_label({"image_tokens": 0, "tiles": [0, 0]}, 1121)
        == "Vision tokens: not reported by this engine"
    )
    pages = [{"page": p, "image": {"width": 10, "height": 10}, "text": f"p{p}", "raw": "", "boxes": [],
              "image_tokens": 257, "annotated_image": {"url": f"http://s3/{p}.png"}} for p in (1, 2)]  # fmt: skip
    doc = reply("markdown", "p1\n\n<!-- page 2 -->\n\np2", pages=pages)
    view = view_of(doc, {"gundam": 1121})
    assert [p["text"] for p in view["pages"]] == ["p1", "p2"]
    assert view["pages"][1]["tokens"] == "Vision tokens: 257 of up to 1121"
    assert annotated_links(doc) == [(1, "http://s3/1.png"), (2, "http://s3/2.png")]


def test_plain_text_download_drops_markup_and_keeps_table_cells_apart():
    text = "# Title\n\n<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>\n\n**bold** &amp; more"
    assert plain_text(text) == "Title\n\na\tb\n1\t2\n\nbold & more\n"


def test_history_keeps_twenty_newest_first_and_drops_what_the_browser_mangled():
    stored = "[]"
    for i in range(25):
        stored = history.added(stored, f"req-{i}", "result", f"page-{i}.png", "ocr")
    entries = history.entries(stored)
    assert len(entries) == 20 and entries[0]["id"] == "req-24"
    stored = history.added(stored, "req-10", "job", "doc.pdf", "markdown", pages=12)
    assert history.entries(stored)[0] == {
        **history.entries(stored)[0],
        "id": "req-10",
        "kind": "job",
        "pages": 12,
    }
    bad = json.dumps(
        [
            {"id": "../../etc", "kind": "result"},
            {"id": "ok-1", "kind": "virus"},
            "x",
            {"id": "ok-2", "kind": "result"},
        ]
    )
    assert [e["id"] for e in history.entries(bad)] == ["ok-2"]
    assert history.entries("not json") == [] and history.entries('{"a": 1}') == []


def test_download_names_are_safe():
    assert stem("../../My Invoice (2).PNG") == "My-Invoice-2"
    assert stem("") == "page" and stem(".png") == "page"


def test_batch_items_change_one_at_a_time_and_jobs_report_pages():
    from ocr_web.batch import job_progress, new_item, updated

    items = [new_item("a", "a.png", 2048, False), new_item("b", "b.pdf", 10, True)]
    changed = updated(items, "b", status="job", **job_progress({"pages_done": 3, "pages_total": 12}))
    assert changed[0] == items[0] and changed is not items
    assert changed[1]["status_label"] == "reading as a job" and changed[1]["pages"] == "3/12 pages"
    assert changed[1]["progress"] == 25 and changed[1]["kind"] == "pdf"
    assert job_progress({"pages_done": 0, "pages_total": None}) == {"pages": "0/? pages", "progress": 0}

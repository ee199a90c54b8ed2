"""The GPU check's reduced form on the tiny model: it runs on CPU in the normal suite so it cannot rot."""

import json

from bench.gpu_fullsize import main


def test_the_gpu_check_runs_end_to_end_on_the_tiny_model(tmp_path, capsys):
    out = tmp_path / "summary.json"
    code = main(["--tiny", "--tokens", "6", "--modes", "tiny,small", "--batches", "1,2", "--no-tests",
                 "--json", str(out)])  # fmt: skip
    printed = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out.read_text())
    assert code == 0 and summary["ok"] and json.loads(printed[-1]) == summary  # the JSON summary comes last
    assert [(r["mode"], r["batch"]) for r in summary["runs"]] == [
        ("tiny", 1),
        ("tiny", 2),
        ("small", 1),
        ("small", 2),
    ]
    for run in summary["runs"]:
        assert run["errors"] == [] and run["bare_tok_s"] > 0 and run["engine_tok_s"] > 0
        assert 0 < run["engine_tokens"] <= 6 * run["batch"]
        assert run["streamed_pieces"] > 0  # through the engine's streamer, not around it
    assert [r["image_tokens"] for r in summary["runs"]] == [257, 257, 545, 545]
    static = summary["static_cache"]
    assert static["same_tokens"] is True
    if (
        abs(static["static_s"] - static["dynamic_s"]) >= 0.002
    ):  # printed to the ms: a near tie may round either way
        assert static["kept"] == (static["static_s"] < static["dynamic_s"])
    assert summary["skipped"] == []


def test_runs_over_the_time_budget_are_skipped_and_named(tmp_path, capsys):
    code = main(["--tiny", "--tokens", "2", "--modes", "tiny", "--batches", "1,2", "--no-tests",
                 "--no-static-cache", "--budget-s", "0"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and summary["ok"] is False  # nothing measured is not a pass
    assert summary["skipped"] == ["tiny@1", "tiny@2"] and summary["runs"] == []

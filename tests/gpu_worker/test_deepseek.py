import pytest
import torch
from PIL import Image

from gpu_worker.engines import EngineLoadError
from gpu_worker.engines.deepseek import DeepseekEngine, mode_kwargs
from gpu_worker.protocol import MODES, TASK_PROMPTS, PayloadTooLarge
from gpu_worker.types import OcrRequest
from tests.utils.documents import render_document


def req(image, mode="gundam", task="ocr", max_new_tokens=None, rid="r", temperature=0.0):
    return OcrRequest(
        rid,
        image,
        task,
        mode,
        TASK_PROMPTS[task].replace("{ref_text}", "x"),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
    )


@pytest.fixture(scope="module")
def pages():
    big = render_document(["Invoice total", "amount due"], width=1300).image  # larger than a tile
    small = Image.new("RGB", (300, 200), "gray")
    return big, small


def test_batch_of_two_sizes_runs_the_whole_path(deepseek_engine, pages):
    big, small = pages
    results = deepseek_engine.run([req(big, "small"), req(small, "tiny", task="markdown", max_new_tokens=6)])
    assert [r.error for r in results] == [None, None]
    assert results[0].completion_tokens == 24 and results[0].finish_reason == "length"
    assert results[1].completion_tokens == 6 and results[1].finish_reason == "length"
    # prompt tokens = bos + image tokens of the preset + the prompt's own tokens
    assert results[0].prompt_tokens > MODES["small"].image_tokens
    assert MODES["tiny"].image_tokens < results[1].prompt_tokens < MODES["small"].image_tokens
    assert all(r.raw for r in results)


def test_on_token_pieces_make_up_each_rows_text(deepseek_engine, pages):
    big, small = pages
    pieces: dict[int, list[str]] = {0: [], 1: []}
    results = deepseek_engine.run(
        [req(big), req(small, "base")], on_token=lambda row, p: pieces[row].append(p)
    )
    for row, result in enumerate(results):
        assert len(pieces[row]) > 1
        assert "".join(pieces[row]) == result.raw


def test_batched_and_serial_runs_give_the_same_tokens(deepseek_engine, pages):
    big, small = pages
    batch = [req(big, "large"), req(small, "tiny"), req(big, "tiny")]
    batched = deepseek_engine.run(batch)
    serial = [deepseek_engine.run([r])[0] for r in batch]
    assert [r.raw for r in batched] == [r.raw for r in serial]


@pytest.mark.parametrize(
    "mode, size",
    [
        ("tiny", (2000, 1500)),
        ("small", (1536, 768)),
        ("base", (2304, 768)),
        ("large", (1536, 1536)),
        ("gundam", (2304, 1536)),
    ],
)
def test_each_preset_emits_its_documented_image_tokens(deepseek_engine, mode, size):
    processor = deepseek_engine.processor
    features = processor(
        images=Image.new("RGB", size, "white"),
        text="<image>\nFree OCR.",
        return_tensors="pt",
        **mode_kwargs(mode),
    )
    assert int((features["input_ids"] == processor.image_token_id).sum()) == MODES[mode].image_tokens


@pytest.mark.parametrize("size", [(800, 2400), (1000, 1000), (3000, 800), (769, 769)])
def test_no_preset_exceeds_its_budget_on_any_page_shape(deepseek_engine, size):
    processor = deepseek_engine.processor
    for mode, preset in MODES.items():
        features = processor(
            images=Image.new("RGB", size), text="<image>", return_tensors="pt", **mode_kwargs(mode)
        )
        assert int((features["input_ids"] == processor.image_token_id).sum()) <= preset.image_tokens


def test_page_not_larger_than_a_tile_gets_the_global_view_only(deepseek_engine):
    features = deepseek_engine.processor(
        images=Image.new("RGB", (768, 500)), text="<image>", return_tensors="pt", **mode_kwargs("gundam")
    )
    assert int(features["num_local_patches"][0]) == 0


def test_eos_gives_finish_reason_stop(tiny_model_dir, pages):
    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=16)
    engine.load()
    eos = engine.processor.tokenizer.eos_token_id

    def favour_eos(module, args, output):
        output[..., eos] = 1e4
        return output

    engine.model.lm_head.register_forward_hook(favour_eos)
    result = engine.run([req(pages[1], "tiny")])[0]
    assert result.finish_reason == "stop"
    assert result.completion_tokens == 0
    assert result.text == ""


def test_a_forced_loop_is_blocked_and_flagged(tiny_model_dir, pages):
    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=20, repetition_window=12, repetition_ngram=3)
    engine.load()
    vocab = engine.processor.tokenizer.get_vocab()
    looped, fallback = vocab["a"], vocab["b"]

    def favour_one_token(module, args, output):
        output[..., looped] = 1e4
        output[..., fallback] = 1e3
        return output

    engine.model.lm_head.register_forward_hook(favour_one_token)
    result = engine.run([req(pages[1], "tiny")])[0]
    assert result.repetition_detected
    assert "aaaa" not in result.raw  # a fourth "a" would repeat the 3-gram "a a a"
    assert "b" in result.raw


def test_normal_output_is_not_flagged(deepseek_engine, pages):
    result = deepseek_engine.run([req(pages[0], "tiny", max_new_tokens=8)])[0]
    assert not result.repetition_detected


def test_out_of_memory_splits_the_batch_and_fails_only_the_page_that_never_fits(
    tiny_model_dir, pages, monkeypatch
):
    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=4)
    engine.load()
    real = engine._generate

    def generate(batch, prepared, rows, on_token):
        if len(rows) > 1 or batch[rows[0]].request_id == "huge":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(batch, prepared, rows, on_token)

    monkeypatch.setattr(engine, "_generate", generate)
    batch = [
        req(pages[1], "tiny", rid="a"),
        req(pages[0], "gundam", rid="huge"),
        req(pages[1], "tiny", rid="c"),
    ]
    results = engine.run(batch)
    assert results[0].error is None and results[2].error is None
    assert isinstance(results[1].error, PayloadTooLarge)
    assert "smaller mode" in str(results[1].error)
    monkeypatch.setattr(engine, "_generate", real)
    assert engine.run([batch[0]])[0].error is None  # still usable


def test_a_page_that_fails_to_prepare_fails_alone(deepseek_engine, pages):
    bad = req(pages[1], "tiny", rid="bad")
    bad.task = "translate"
    results = deepseek_engine.run([bad, req(pages[1], "tiny", max_new_tokens=2)])
    assert results[0].error is not None and results[1].error is None


def test_sampling_rows_run_in_their_own_group(deepseek_engine, pages):
    results = deepseek_engine.run(
        [req(pages[1], "tiny", temperature=0.7, max_new_tokens=3), req(pages[1], "tiny", max_new_tokens=3)]
    )
    assert [r.completion_tokens for r in results] == [3, 3]


def test_missing_weights_are_one_clear_load_error(tmp_path):
    with pytest.raises(EngineLoadError, match="DEEPSEEK_MODEL"):
        DeepseekEngine(str(tmp_path / "no-such-model")).load()

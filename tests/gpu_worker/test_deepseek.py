import logging
import sys
import time
import weakref

import pytest
import torch
from PIL import Image

import gpu_worker.engines.deepseek as deepseek_module
from gpu_worker.engines import EngineLoadError
from gpu_worker.engines.deepseek import DeepseekEngine, mode_kwargs, text_attention
from gpu_worker.engines.presets import tile_grid
from gpu_worker.protocol import MODES, TASK_PROMPTS, PayloadTooLarge
from gpu_worker.types import OcrRequest
from tests.utils.documents import render_document
from tests.utils.tiny_deepseek import build_tiny_model


def req(image, mode="gundam", task="ocr", max_new_tokens=None, rid="r", temperature=0.0, stream=True):
    return OcrRequest(
        rid,
        image,
        task,
        mode,
        TASK_PROMPTS[task].replace("{ref_text}", "x"),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        stream=stream,
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


@pytest.mark.parametrize(
    "failure",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
        RuntimeError("CUDA error: out of memory"),
    ],
    ids=["OutOfMemoryError", "cublas-alloc", "cuda-error"],
)
def test_out_of_memory_splits_the_batch_and_fails_only_the_page_that_never_fits(
    tiny_model_dir, pages, monkeypatch, failure
):
    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=4)
    engine.load()
    real = engine._generate

    def generate(batch, prepared, rows, on_token, states):
        if len(rows) > 1 or batch[rows[0]].request_id == "huge":
            raise failure
        return real(batch, prepared, rows, on_token, states)

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


def test_reported_engine_time_includes_preparing_the_images(deepseek_engine, pages, monkeypatch):
    """`inference_ms` is what the caller waited on the engine for: preprocessing counts, not only generate."""
    prepare = deepseek_engine._prepare

    def slow_prepare(request):
        time.sleep(0.2)
        return prepare(request)

    monkeypatch.setattr(deepseek_engine, "_prepare", slow_prepare)
    started = time.perf_counter()
    results = deepseek_engine.run(
        [req(pages[1], "tiny", max_new_tokens=2), req(pages[1], "tiny", max_new_tokens=2)]
    )
    wall_ms = (time.perf_counter() - started) * 1000
    assert all(400 <= r.inference_ms <= wall_ms for r in results), [r.inference_ms for r in results]


def test_sampling_rows_run_in_their_own_group(deepseek_engine, pages):
    results = deepseek_engine.run(
        [req(pages[1], "tiny", temperature=0.7, max_new_tokens=3), req(pages[1], "tiny", max_new_tokens=3)]
    )
    assert [r.completion_tokens for r in results] == [3, 3]


def test_missing_weights_are_one_clear_load_error(tmp_path):
    with pytest.raises(EngineLoadError, match="DEEPSEEK_MODEL"):
        DeepseekEngine(str(tmp_path / "no-such-model")).load()


def test_other_runtime_errors_are_not_taken_for_out_of_memory(deepseek_engine, pages, monkeypatch):
    def generate(batch, prepared, rows, on_token, states):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(deepseek_engine, "_generate", generate)
    with pytest.raises(RuntimeError, match="device-side assert"):
        deepseek_engine.run([req(pages[1], "tiny"), req(pages[1], "tiny")])


def test_the_retry_runs_after_the_failed_attempt_has_been_released(deepseek_engine, pages, monkeypatch):
    """Inside the `except`, the traceback keeps the failed attempt's tensors: empty_cache frees nothing."""
    real = deepseek_engine._generate
    held: list[weakref.ref] = []
    alive_at_retry: list[bool] = []

    def generate(batch, prepared, rows, on_token, states):
        if len(rows) > 1:
            activations = torch.empty(1024)  # stands for the failed attempt's KV cache
            held.append(weakref.ref(activations))
            raise torch.OutOfMemoryError("CUDA out of memory")
        alive_at_retry.append(held[0]() is not None)
        return real(batch, prepared, rows, on_token, states)

    monkeypatch.setattr(deepseek_engine, "_generate", generate)
    results = deepseek_engine.run(
        [req(pages[1], "tiny", max_new_tokens=2), req(pages[0], "tiny", max_new_tokens=2)]
    )
    assert [r.error for r in results] == [None, None]
    assert alive_at_retry == [False, False]


def test_an_out_of_memory_after_streaming_never_streams_text_twice(deepseek_engine, pages):
    """The split rows continue from what they already streamed: each row's pieces add up to its text."""
    batch = [req(pages[0], "small", max_new_tokens=14), req(pages[1], "tiny", max_new_tokens=10)]
    pieces: dict[int, list[str]] = {0: [], 1: []}
    streamed_before_failure: list[int] = []
    calls = 0

    def fail_once_mid_decode(module, args, output):
        nonlocal calls
        calls += 1
        if output.shape[0] > 1 and calls == 7:
            streamed_before_failure.extend(len("".join(p)) for p in pieces.values())
            raise torch.OutOfMemoryError("CUDA out of memory")
        return output

    handle = deepseek_engine.model.lm_head.register_forward_hook(fail_once_mid_decode)
    try:
        results = deepseek_engine.run(batch, on_token=lambda row, piece: pieces[row].append(piece))
    finally:
        handle.remove()
    assert all(n > 0 for n in streamed_before_failure)  # the failure came after text went out
    for row, result in enumerate(results):
        assert result.error is None
        assert "".join(pieces[row]) == result.raw
        assert result.completion_tokens == batch[row].max_new_tokens


def forced_hook(rows_to_tokens):
    """An lm_head hook that makes row r write rows_to_tokens[r](step) at each step (None: leave it)."""
    step = 0

    def hook(module, args, output):
        nonlocal step
        for row, choose in rows_to_tokens.items():
            token = choose(step)
            if token is not None:
                output[row, -1, token] = 1e4
        step += 1
        return output

    return hook


def test_a_row_that_ended_with_eos_reports_stop_and_its_padding_is_not_a_loop(tiny_model_dir, pages):
    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=20, repetition_window=12, repetition_ngram=3)
    engine.load()
    eos, pad = engine.eos_id, engine.pad_id
    # row 0 ends at once; afterwards its best token is the padding generate feeds it
    hook = forced_hook({0: lambda step: eos if step == 0 else pad})
    engine.model.lm_head.register_forward_hook(hook)
    first, second = engine.run([req(pages[1], "tiny"), req(pages[1], "tiny")])
    assert (first.finish_reason, first.completion_tokens, first.raw) == ("stop", 0, "")
    assert first.repetition_detected is False
    assert second.completion_tokens == 20


@pytest.mark.parametrize("streaming", [True, False], ids=["one-row-streams", "no-row-streams"])
def test_a_repetition_blocked_before_an_out_of_memory_is_still_reported(tiny_model_dir, pages, streaming):
    """A split row continues from its kept tokens; a loop the blocker broke in them is still flagged. The same
    holds in a batch where no row streams (every job from the queue): it once started over from nothing."""
    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=30, repetition_window=12, repetition_ngram=3)
    engine.load()
    vocab = engine.processor.tokenizer.get_vocab()
    loop, other = [vocab["a"], vocab["b"]], [vocab[c] for c in "cdefghi"]
    calls = 0

    def hook(module, args, output):
        nonlocal calls
        calls += 1
        if output.shape[0] == 1:  # the retries, a row at a time: each ends at once
            output[0, -1, engine.eos_id] = 1e4
            return output
        if calls == 8:
            raise torch.OutOfMemoryError("CUDA out of memory")
        output[0, -1, loop[calls % 2]] = 1e4  # a b a b: the fifth token is blocked
        output[1, -1, other[calls - 1]] = 1e4  # distinct tokens: nothing to block
        return output

    pieces: dict[int, list[str]] = {0: [], 1: []}
    handle = engine.model.lm_head.register_forward_hook(hook)
    try:  # row 1 does not stream: it only keeps its tokens, and continues from them too
        first, second = engine.run([req(pages[1], "tiny", stream=streaming), req(pages[1], "tiny", stream=False)],
                                   on_token=(lambda row, piece: pieces[row].append(piece)) if streaming else None)  # fmt: skip
    finally:
        handle.remove()
    assert (first.finish_reason, first.completion_tokens) == ("stop", 7)
    assert first.repetition_detected is True
    assert (second.finish_reason, second.raw, second.repetition_detected) == ("stop", "cdefghi", False)
    assert "".join(pieces[0]) == (first.raw if streaming else "") and pieces[1] == []


def test_a_table_written_to_the_cap_is_not_taken_for_a_loop(tiny_model_dir, pages):
    """Table cells repeat by design: neither the blocker nor the check on a capped row counts them."""
    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=40, repetition_window=12, repetition_ngram=3)
    engine.load()
    (cell,) = engine.whitelist  # the tiny vocabulary's only table token, "|"
    handle = engine.model.lm_head.register_forward_hook(forced_hook({0: lambda step: cell}))
    try:
        result = engine.run([req(pages[1], "tiny")])[0]
    finally:
        handle.remove()
    assert (result.finish_reason, result.raw) == ("length", "|" * 40)
    assert result.repetition_detected is False


def test_only_the_rows_that_stream_send_text(deepseek_engine, pages):
    pieces: dict[int, list[str]] = {0: [], 1: [], 2: []}
    batch = [req(pages[0], "small", stream=False), req(pages[1], "tiny"), req(pages[1], "base", stream=False)]
    results = deepseek_engine.run(batch, on_token=lambda row, piece: pieces[row].append(piece))
    assert pieces[0] == [] and pieces[2] == []
    assert "".join(pieces[1]) == results[1].raw and results[1].raw
    for request, result in zip(batch, results, strict=True):
        alone = deepseek_engine.run([request])[0]
        assert (result.error, result.raw) == (None, alone.raw)


@pytest.fixture(scope="module")
def no_pad_engine(tmp_path_factory):
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-no-pad"), pad=False)
    engine = DeepseekEngine(str(folder), max_new_tokens=6)
    engine.load()
    return engine


def test_a_tokenizer_without_pad_token_pads_with_eos(no_pad_engine, pages):
    assert no_pad_engine.processor.tokenizer.pad_token_id is None
    assert no_pad_engine.pad_id == no_pad_engine.eos_id
    results = no_pad_engine.run([req(pages[0], "small"), req(pages[1], "tiny", max_new_tokens=3)])
    assert [r.error for r in results] == [None, None]
    # pad == eos: rows cut by their cap are followed by "EOS" padding, and still are `length`
    assert [(r.finish_reason, r.completion_tokens) for r in results] == [("length", 6), ("length", 3)]


def test_with_pad_equal_to_eos_a_real_eos_still_reports_stop(no_pad_engine, pages):
    hook = no_pad_engine.model.lm_head.register_forward_hook(
        forced_hook({0: lambda step: no_pad_engine.eos_id if step == 2 else None})
    )
    try:
        first, second = no_pad_engine.run([req(pages[1], "tiny"), req(pages[0], "tiny")])
    finally:
        hook.remove()
    assert (first.finish_reason, first.completion_tokens) == ("stop", 2)
    assert (second.finish_reason, second.completion_tokens) == ("length", 6)


def test_a_tokenizer_that_does_not_put_bos_first_is_a_clear_load_error(tmp_path):
    folder = build_tiny_model(tmp_path / "no-bos", bos_first=False)
    with pytest.raises(EngineLoadError, match="BOS"):
        DeepseekEngine(str(folder)).load()


def test_a_failed_warm_up_leaves_the_engine_unloaded(tiny_model_dir, monkeypatch):
    engine = DeepseekEngine(str(tiny_model_dir), max_new_tokens=2)
    real = DeepseekEngine._generate
    runs: list[int] = []

    def broken(self, *args):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(DeepseekEngine, "_generate", broken)
    with pytest.raises(EngineLoadError, match="first run"):
        engine.load()
    assert engine.model is None
    with pytest.raises(EngineLoadError, match="before load"):
        engine.run([])

    def counting(self, *args):
        runs.append(1)
        return real(self, *args)

    monkeypatch.setattr(DeepseekEngine, "_generate", counting)
    engine.load()  # really loads and warms up again
    assert runs == [1] and engine.model is not None


def test_a_broken_flash_attn_install_falls_back_to_sdpa(tmp_path, monkeypatch, caplog):
    package = tmp_path / "flash_attn"
    package.mkdir()
    (package / "__init__.py").write_text(
        'raise ImportError("flash_attn_2_cuda.so: undefined symbol: _ZN3c104cuda9SetDeviceEi")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "flash_attn", raising=False)
    monkeypatch.setattr(deepseek_module, "is_flash_attn_2_available", lambda: True)
    with caplog.at_level(logging.WARNING, logger=deepseek_module.__name__):
        assert text_attention() == "sdpa"
    assert "undefined symbol" in caplog.text
    (package / "__init__.py").write_text("")  # a working install is used
    monkeypatch.delitem(sys.modules, "flash_attn", raising=False)
    assert text_attention() == "flash_attention_2"
    monkeypatch.setattr(deepseek_module, "is_flash_attn_2_available", lambda: False)
    assert text_attention() == "sdpa"  # not installed (transformers' own check says so)


def first_step_logits(engine, requests):
    """The logits each row's first token is chosen from, for these requests run as one batch."""
    items = [engine._prepare(r) for r in requests]
    with torch.inference_mode():
        return engine.model(**engine._collate(items, [[] for _ in items])).logits[:, -1].float()


def test_outputs_depend_on_the_image(deepseek_engine, pages):
    page = pages[0]
    blank = Image.new("RGB", page.size, "white")  # same size and mode: the same prompt tokens
    logits = first_step_logits(deepseek_engine, [req(page, "small"), req(blank, "small")])
    assert (logits[0] - logits[1]).abs().max() > 1e-3  # exactly 0 with a dead vision encoder
    dark, light = Image.new("RGB", (300, 200), "black"), Image.new("RGB", (300, 200), "white")
    first, second = deepseek_engine.run(
        [req(dark, "tiny", max_new_tokens=8), req(light, "tiny", max_new_tokens=8)]
    )
    assert first.raw != second.raw


def test_every_row_of_a_mixed_batch_equals_its_run_alone(deepseek_engine, pages):
    wide = render_document(["amount due", "table row cell"], width=2000).image
    tall = Image.new("RGB", (700, 2100), "white")
    batch = [
        req(pages[0], "gundam", task="markdown", max_new_tokens=12),
        req(pages[1], "tiny", task="ocr", max_new_tokens=5),
        req(wide, "small", task="locate", max_new_tokens=9),
        req(tall, "base", task="describe", max_new_tokens=16),
        req(pages[0], "large", task="figure"),
    ]
    together = first_step_logits(deepseek_engine, batch)
    for row, request in enumerate(batch):
        alone = first_step_logits(deepseek_engine, [request])[0]
        assert torch.allclose(together[row], alone, atol=1e-4), f"row {row}"
    batched = deepseek_engine.run(batch)
    serial = [deepseek_engine.run([r])[0] for r in batch]
    assert [r.raw for r in batched] == [r.raw for r in serial]
    assert [r.completion_tokens for r in batched] == [12, 5, 9, 16, 24]
    assert len({r.raw for r in batched}) == len(batch)  # the rows really differ


def test_the_vision_encoder_in_chunks_gives_the_same_outputs(deepseek_engine, pages):
    batch = [req(pages[0], "gundam"), req(pages[1], "tiny"), req(pages[0], "small")]
    sam_calls: list[int] = []
    sam = deepseek_engine.model.model.vision_tower.sam_encoder
    handle = sam.register_forward_hook(lambda module, args, output: sam_calls.append(args[0].shape[0]))
    try:
        whole = first_step_logits(deepseek_engine, batch)
        assert sam_calls == [3, 7]  # three global views, then all seven tiles (5 + 2): one call each
        sam_calls.clear()
        deepseek_engine.vision_chunk = 3
        chunked = first_step_logits(deepseek_engine, batch)
        assert sam_calls == [3, 3, 3, 1]  # tiles in chunks of three
    finally:
        deepseek_engine.vision_chunk = None
        handle.remove()
    assert torch.allclose(whole, chunked, atol=1e-5)


def test_each_result_reports_the_image_tokens_and_tile_grid_it_cost(deepseek_engine):
    portrait_a4 = Image.new("RGB", (1654, 2339), "white")
    results = deepseek_engine.run(
        [req(portrait_a4, mode, max_new_tokens=1) for mode in ("tiny", "small", "base", "large", "gundam")]
    )
    # the processor picks the grid nearest the page's shape: base and large cost no more than small
    assert [r.image_tokens for r in results] == [257, 545, 545, 545, 1121]
    assert [r.tiles for r in results] == [None, (1, 2), (1, 2), (1, 2), (2, 3)]
    prompt_text = deepseek_engine.processor.tokenizer("\nFree OCR.", add_special_tokens=False)["input_ids"]
    assert all(r.prompt_tokens == 1 + r.image_tokens + len(prompt_text) for r in results)


@pytest.mark.parametrize(
    "size", [(1654, 2339), (2339, 1654), (576, 2400), (900, 900), (2000, 2800), (769, 3000)]
)
def test_the_reported_tile_grid_is_the_one_the_processor_cuts(deepseek_engine, size):
    for mode in MODES:
        features = deepseek_engine.processor.image_processor(
            Image.new("RGB", size), return_tensors="pt", **mode_kwargs(mode)
        )
        grid = tile_grid(*size, mode)
        assert (grid[0] * grid[1] if grid else 0) == int(features["num_local_patches"][0])


def test_the_published_preset_table_is_what_the_processor_computes():
    from bench.preset_table import TABLE, render

    assert TABLE.read_text() == render(), "docs/presets.md is stale: run python -m bench.preset_table"

import pytest
import torch

from gpu_worker.engines.repetition import NGramRepeatBlocker, tail_repeats


def scores_for(best: int, vocab: int = 10) -> torch.Tensor:
    scores = torch.zeros((1, vocab))
    scores[0, best] = 5.0
    return scores


def test_blocks_the_token_that_would_repeat_an_ngram():
    blocker = NGramRepeatBlocker(prompt_length=2, window=20, ngram=3)
    ids = torch.tensor([[9, 9, 1, 2, 3, 4, 1, 2]])  # prompt 9 9; "1 2" was followed by 3
    out = blocker(ids, scores_for(best=3))
    assert out[0, 3] == float("-inf")
    assert out.argmax().item() != 3
    assert blocker.fired == {0}


def test_spares_whitelisted_table_cell_tokens():
    blocker = NGramRepeatBlocker(prompt_length=0, window=20, ngram=3, whitelist={3})
    out = blocker(torch.tensor([[1, 2, 3, 4, 1, 2]]), scores_for(best=3))
    assert out[0, 3] == 5.0
    assert blocker.fired == set()


def test_leaves_normal_text_alone():
    blocker = NGramRepeatBlocker(prompt_length=0, window=20, ngram=3)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    scores = scores_for(best=9)
    out = blocker(ids, scores.clone())
    assert torch.equal(out, scores)
    assert blocker.fired == set()


def test_only_the_window_is_searched():
    blocker = NGramRepeatBlocker(prompt_length=0, window=4, ngram=3)
    ids = torch.tensor([[1, 2, 3, 5, 6, 7, 8, 1, 2]])  # the earlier "1 2 3" lies outside the last 4 tokens
    assert blocker.banned_tokens(ids[0].tolist()) == set()


def test_the_prompt_is_not_searched():
    blocker = NGramRepeatBlocker(prompt_length=3, window=20, ngram=3)
    ids = torch.tensor([[1, 2, 3, 1, 2]])
    assert torch.equal(blocker(ids, scores_for(3)), scores_for(3))


def test_rows_are_independent():
    blocker = NGramRepeatBlocker(prompt_length=0, window=20, ngram=2)
    ids = torch.tensor([[1, 2, 1], [4, 5, 6]])
    scores = torch.zeros((2, 10))
    scores[:, 2] = 5.0
    out = blocker(ids, scores)
    assert out[0, 2] == float("-inf") and out[1, 2] == 5.0
    assert blocker.fired == {0}


def test_tail_repeats():
    assert tail_repeats([1, 2, 3, 4] * 20, span=4, times=4)
    assert not tail_repeats(list(range(300)), span=4, times=2)


EOS, PAD = 1, 2


def test_a_row_that_ended_with_eos_is_left_alone():
    # row 0 finished at its first token; generate keeps feeding it padding while row 1 writes on
    blocker = NGramRepeatBlocker(prompt_length=2, window=20, ngram=3, eos_id=EOS)
    ids = torch.tensor([[9, 9, EOS, PAD, PAD, PAD, PAD], [9, 9, 4, 5, 6, 7, 8]])
    scores = torch.zeros((2, 10))
    scores[:, PAD] = 5.0
    out = blocker(ids, scores.clone())
    assert torch.equal(out, scores)
    assert blocker.fired == set()


def test_a_row_at_its_cap_is_left_alone_while_others_write_on():
    caps = torch.tensor([4, 20])
    blocker = NGramRepeatBlocker(prompt_length=0, window=20, ngram=2, eos_id=EOS, caps=caps)
    ids = torch.tensor([[3, 3, 3, 3], [3, 3, 3, 3]])  # row 0 reached its cap of 4; row 1 loops
    out = blocker(ids, scores_for(3).repeat(2, 1))
    assert out[0, 3] == 5.0 and out[1, 3] == float("-inf")
    assert blocker.fired == {1}


def test_a_row_continued_after_a_retry_counts_its_earlier_tokens():
    # row 0 carries 4 tokens it generated before an out-of-memory retry at the end of its prompt
    blocker = NGramRepeatBlocker(prompt_length=6, window=20, ngram=3, starts=torch.tensor([2, 6]))
    ids = torch.tensor([[9, 9, 1, 2, 3, 1, 2], [9, 9, 1, 2, 3, 1, 2]])
    out = blocker(ids, scores_for(3).repeat(2, 1))
    assert out[0, 3] == float("-inf")  # "1 2 3" lies inside row 0's own text
    assert out[1, 3] == 5.0  # for row 1 those tokens are prompt
    assert blocker.fired == {0}


@pytest.mark.parametrize("seed", range(6))
def test_the_tensor_step_bans_exactly_what_the_plain_rule_bans(seed):
    generator = torch.Generator().manual_seed(seed)
    prompt, window, ngram = 3, 12, 3
    ids = torch.randint(3, 7, (4, prompt + 25), generator=generator)  # few symbols: many repeats
    blocker = NGramRepeatBlocker(prompt, window, ngram, whitelist={5})
    scores = torch.randn((4, 8), generator=generator)
    out = blocker(ids, scores.clone())
    for row in range(4):
        expected = blocker.banned_tokens(ids[row, prompt:].tolist())
        assert {int(t) for t in torch.nonzero(out[row] == float("-inf")).flatten()} == expected


def test_a_step_reads_nothing_back_from_the_device(monkeypatch):
    """Each read of a tensor value on the host is a device sync on CUDA: the step must make none."""
    blocker = NGramRepeatBlocker(
        prompt_length=2, window=20, ngram=3, whitelist={7}, eos_id=EOS, caps=torch.tensor([30, 30])
    )
    ids = torch.tensor([[9, 9, 3, 4, 5, 6, 3, 4], [9, 9, 4, 5, 6, 7, 8, 0]])

    def host_read(*args, **kwargs):
        raise AssertionError("host read during a generation step")

    for name in ("tolist", "item", "__bool__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, host_read)
    out = blocker(ids, scores_for(5).repeat(2, 1))
    monkeypatch.undo()
    assert out[0, 5] == float("-inf") and blocker.fired == {0}


def test_tail_repeats_spares_a_table_of_equal_cells():
    td, x, end_td = 11, 12, 13
    cells = [td, x, end_td] * 20
    assert tail_repeats(cells)  # without the whitelist this looks like a loop
    assert not tail_repeats(cells, whitelist={td, end_td})
    assert tail_repeats([4, 5, 6] * 20, whitelist={td, end_td})  # plain text loops still count

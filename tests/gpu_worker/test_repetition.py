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

"""Per-row streaming: the pieces add up to the final text, cost stays flat on long lines, retries never repeat."""

import random

import pytest
import torch

from gpu_worker.engines.streaming import RowStreamer, RowText
from tests.utils.tiny_deepseek import build_tokenizer

LINE = "| Größe | Preis € | 表格 | naïve café | 0123456789 | " * 60  # one line: an HTML table's shape


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


class CountingTokenizer:
    """Records how many tokens each decode call reads."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.lengths: list[int] = []

    def decode(self, ids, **kwargs):
        self.lengths.append(len(ids))
        return self.tokenizer.decode(ids, **kwargs)


def stream(tokenizer, rows_of_tokens, cap=10**6, eos=1, streams=None):
    pieces: dict[int, list[str]] = {row: [] for row in range(len(rows_of_tokens))}
    states = [RowText(cap=cap) for _ in rows_of_tokens]
    streamer = RowStreamer(tokenizer, list(range(len(rows_of_tokens))), states,
                           lambda row, piece: pieces[row].append(piece), eos, streams)  # fmt: skip
    streamer.put(torch.zeros((len(rows_of_tokens), 3), dtype=torch.long))  # the prompt
    for step in range(max(len(t) for t in rows_of_tokens)):
        streamer.put(torch.tensor([t[step] if step < len(t) else eos for t in rows_of_tokens]))
    streamer.end()
    return ["".join(pieces[row]) for row in pieces], states


def test_a_long_single_line_streams_exactly_its_text_with_flat_cost_per_token(tokenizer):
    ids = tokenizer(LINE, add_special_tokens=False)["input_ids"]
    assert len(ids) > 1500 and "\n" not in LINE
    counting = CountingTokenizer(tokenizer)
    (text,), _ = stream(counting, [ids])
    assert text == tokenizer.decode(ids, skip_special_tokens=False) == LINE
    # Each step decodes the last piece and the new tokens, never the line so far.
    assert max(counting.lengths) <= 8


def test_random_bytes_and_broken_characters_still_add_up(tokenizer):
    generator = random.Random(7)
    rows = [[generator.randrange(9, len(tokenizer)) for _ in range(300)] for _ in range(3)]
    texts, _ = stream(tokenizer, rows)
    assert texts == [tokenizer.decode(r, skip_special_tokens=False) for r in rows]


def test_rows_end_at_eos_or_cap_and_their_padding_is_not_streamed(tokenizer):
    a = tokenizer("Invoice total", add_special_tokens=False)["input_ids"]
    b = tokenizer("amount due 0123456789", add_special_tokens=False)["input_ids"]
    texts, states = stream(tokenizer, [a + [1, 2, 2, 2], b], cap=len(b) - 2)
    assert texts[0] == "Invoice total" and states[0].ended_by_eos and states[0].tokens == a
    assert texts[1] == tokenizer.decode(b[:-2]) and not states[1].ended_by_eos and states[1].done


def test_a_row_nobody_streams_is_kept_but_never_decoded(tokenizer):
    """In a batch with one stream, the other rows cost no decoding per step: their tokens are only kept
    (for a retry), and their text is decoded once, with the result."""
    streamed = tokenizer(LINE[:300], add_special_tokens=False)["input_ids"]
    quiet = tokenizer(LINE[300:600], add_special_tokens=False)["input_ids"]
    counting = CountingTokenizer(tokenizer)
    texts, states = stream(counting, [streamed, quiet + [1]], streams=[True, False])
    assert texts == [LINE[:300], ""]
    assert states[1].tokens == quiet and states[1].ended_by_eos
    assert states[0].tokens == streamed
    # every decode call read at most a piece of the streamed row: none was spent on the quiet one
    alone = CountingTokenizer(tokenizer)
    stream(alone, [streamed])
    assert counting.lengths == alone.lengths


def test_a_row_continued_by_a_new_streamer_sends_only_new_text(tokenizer):
    ids = tokenizer(LINE[:200], add_special_tokens=False)["input_ids"]
    state = RowText(cap=10**6)
    sent: list[str] = []
    first = RowStreamer(tokenizer, [0], [state], lambda row, piece: sent.append(piece), 1)
    first.put(torch.zeros((1, 2), dtype=torch.long))
    for token in ids[:40]:
        first.put(torch.tensor([token]))
    # the first generate died here (no end()); a retry continues the same row state
    second = RowStreamer(tokenizer, [0], [state], lambda row, piece: sent.append(piece), 1)
    second.put(torch.zeros((1, 2 + 40), dtype=torch.long))
    for token in ids[40:]:
        second.put(torch.tensor([token]))
    second.end()
    assert "".join(sent) == LINE[:200]

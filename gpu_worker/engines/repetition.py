"""The repetition guard: a sliding-window n-gram blocker (a logits processor) and a tail check."""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

TABLE_CELL_TOKENS = ("<td>", "</td>", "<tr>", "</tr>", "<td", "</td", "|")


class NGramRepeatBlocker(LogitsProcessor):
    """Within the last `window` generated tokens, forbid completing an n-gram that already occurred.

    Tokens in `whitelist` (table cells, which legitimately repeat) are never blocked. `fired` holds
    the rows whose best token was blocked at least once.
    """

    def __init__(
        self, prompt_length: int, window: int = 90, ngram: int = 30, whitelist: set[int] | None = None
    ):
        if ngram < 2 or window < ngram:
            raise ValueError("need 2 <= ngram <= window")
        self.prompt_length = prompt_length
        self.window = window
        self.ngram = ngram
        self.whitelist = whitelist or set()
        self.fired: set[int] = set()

    def banned_tokens(self, generated: list[int]) -> set[int]:
        """Tokens that would repeat an n-gram inside the window, given one row's generated tokens."""
        n = self.ngram
        if len(generated) < n:
            return set()
        recent = generated[-self.window :]
        prefix = recent[-(n - 1) :]
        banned = set()
        for start in range(len(recent) - n + 1):
            if recent[start : start + n - 1] == prefix:
                banned.add(recent[start + n - 1])
        return banned - self.whitelist

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] < self.ngram:
            return scores
        rows = generated[:, -self.window :].tolist()
        best = scores.argmax(dim=-1).tolist()
        for row, tokens in enumerate(rows):
            banned = self.banned_tokens(tokens)
            if banned:
                if best[row] in banned:
                    self.fired.add(row)
                scores[row, list(banned)] = float("-inf")
        return scores


def tail_repeats(tokens: list[int], span: int = 8, times: int = 4, tail: int = 256) -> bool:
    """True when some `span`-token sequence occurs `times` or more in the last `tail` tokens."""
    recent = tokens[-tail:]
    counts: dict[tuple[int, ...], int] = {}
    for start in range(len(recent) - span + 1):
        key = tuple(recent[start : start + span])
        counts[key] = counts.get(key, 0) + 1
        if counts[key] >= times:
            return True
    return False

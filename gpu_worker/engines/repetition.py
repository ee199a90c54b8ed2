"""The repetition guard: a sliding-window n-gram blocker (a logits processor) and a tail check."""

from __future__ import annotations

from collections.abc import Collection

import torch
from transformers import LogitsProcessor

TABLE_CELL_TOKENS = ("<td>", "</td>", "<tr>", "</tr>", "<td", "</td", "|")


class NGramRepeatBlocker(LogitsProcessor):
    """Within the last `window` generated tokens, forbid completing an n-gram that already occurred.

    Tokens in `whitelist` (table cells, which legitimately repeat) are never blocked. Rows that have
    finished (emitted `eos_id`, or reached their cap in `caps`) are left alone: their padding tail is
    not text. `starts` gives, per row, the column where its generated text begins (default: the end of
    the padded prompt; earlier for a row continued after an out-of-memory retry). Every step is a few
    tensor ops on the device: no per-step copy to the host. `fired` holds the rows whose best token
    was blocked at least once.
    """

    def __init__(
        self,
        prompt_length: int,
        window: int = 90,
        ngram: int = 30,
        whitelist: Collection[int] | None = None,
        *,
        eos_id: int | None = None,
        caps: torch.Tensor | None = None,
        starts: torch.Tensor | None = None,
    ):
        if ngram < 2 or window < ngram:
            raise ValueError("need 2 <= ngram <= window")
        self.prompt_length = prompt_length
        self.window = window
        self.ngram = ngram
        self.whitelist = set(whitelist or ())
        self.eos_id = eos_id
        self.caps = caps
        self.starts = starts
        # One host read at construction: the earliest column where any row's text begins.
        self._earliest = prompt_length if starts is None or not starts.numel() else int(starts.min())
        self._whitelist_ids: torch.Tensor | None = None
        self._fired: torch.Tensor | None = None

    @property
    def fired(self) -> set[int]:
        """Rows whose best token was blocked at least once (one host read, after generation)."""
        if self._fired is None:
            return set()
        return {int(i) for i in torch.nonzero(self._fired).flatten().tolist()}

    def banned_tokens(self, generated: list[int]) -> set[int]:
        """Tokens that would repeat an n-gram inside the window, given one row's generated tokens.

        The plain-Python statement of the rule; `__call__` computes the same on tensors.
        """
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
        n = self.ngram
        rows, length = input_ids.shape
        device = input_ids.device
        # Cheap host-side exit while no row can hold a whole n-gram yet (shapes only, no device sync).
        if length - self._earliest < n:
            return scores
        if self.starts is None:
            self.starts = torch.full((rows,), self.prompt_length, dtype=torch.long, device=device)
        starts = self.starts
        recent = input_ids[:, -min(self.window, length) :]
        windows = recent.unfold(1, n, 1)  # (rows, k, n): every n-gram inside the window
        prefix = recent[:, -(n - 1) :]
        match = (windows[:, :, :-1] == prefix[:, None, :]).all(dim=-1)  # (rows, k)
        first = torch.arange(windows.shape[1], device=device) + (length - recent.shape[1])
        match &= first[None, :] >= starts[:, None]  # the n-gram lies inside the row's own text
        match &= self._active(input_ids, starts)[:, None]
        vocab = scores.shape[-1]
        index = torch.where(match, windows[:, :, -1], vocab)  # unmatched n-grams point past the vocab
        banned = torch.zeros((rows, vocab + 1), dtype=torch.bool, device=scores.device)
        banned.scatter_(1, index.to(scores.device), True)
        banned = banned[:, :vocab]
        if self.whitelist:
            if self._whitelist_ids is None:
                ids = sorted(i for i in self.whitelist if 0 <= i < vocab)
                self._whitelist_ids = torch.tensor(ids, dtype=torch.long, device=scores.device)
            banned[:, self._whitelist_ids] = False
        best = scores.argmax(dim=-1, keepdim=True)
        hit = banned.gather(1, best).squeeze(1)
        self._fired = hit if self._fired is None else self._fired | hit
        return scores.masked_fill(banned, float("-inf"))  # type: ignore[return-value]

    def _active(self, input_ids: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """Rows still writing: no EOS among their new tokens and below their cap."""
        active = torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if self.eos_id is not None:
            active &= ~(input_ids[:, self.prompt_length :] == self.eos_id).any(dim=1)
        if self.caps is not None:
            active &= (input_ids.shape[1] - starts) < self.caps
        return active


def tail_repeats(
    tokens: list[int],
    span: int = 8,
    times: int = 4,
    tail: int = 256,
    whitelist: Collection[int] = (),
) -> bool:
    """True when some `span`-token sequence occurs `times` or more in the last `tail` tokens.

    A sequence holding a whitelisted (table-cell) token does not count: a table of equal cells
    repeats by design, the same rule the blocker applies.
    """
    allowed = set(whitelist)
    recent = tokens[-tail:]
    counts: dict[tuple[int, ...], int] = {}
    for start in range(len(recent) - span + 1):
        key = tuple(recent[start : start + span])
        if allowed and not allowed.isdisjoint(key):
            continue
        counts[key] = counts.get(key, 0) + 1
        if counts[key] >= times:
            return True
    return False

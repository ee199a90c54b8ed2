"""Per-row streaming for batched generate: incremental detokenisation that survives a retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.generation.streamers import BaseStreamer

from gpu_worker.types import TokenCallback

REPLACEMENT = "\ufffd"  # what a decoder shows for an incomplete multi-byte character


def decode(tokenizer: Any, tokens: list[int]) -> str:
    """Text of `tokens` as the model wrote it: special tokens kept (grounding tags), spaces untouched."""
    return str(tokenizer.decode(tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False))


@dataclass
class RowText:
    """One request's generated tokens and how much of their text was handed out.

    It outlives a single `generate`: after an out-of-memory split the row continues from these
    tokens, so text already streamed is never streamed again, and a repetition already blocked in
    them is still reported.
    """

    cap: int
    tokens: list[int] = field(default_factory=list)
    prefix_offset: int = 0  # tokens[prefix_offset:read_offset] decode to text already sent
    read_offset: int = 0
    ended_by_eos: bool = False
    blocked: bool = False  # the repetition blocker changed one of `tokens`

    @property
    def done(self) -> bool:
        """The row has ended (EOS) or reached its cap: it needs no more generation."""
        return self.ended_by_eos or len(self.tokens) >= self.cap

    def add(self, token: int) -> None:
        """Add one token of a row nobody streams: no decoding (its text is decoded once, at the end)."""
        self.tokens.append(token)

    def push(self, tokenizer: Any, token: int) -> str:
        """Add one token; return the text it completes ("" while a character is still partial).

        Decodes only the tokens since the last piece (plus the piece before, for context), so a
        4,000-token line costs the same per token as a short one.
        """
        self.tokens.append(token)
        return self._advance(tokenizer, final=False)

    def flush(self, tokenizer: Any) -> str:
        """Whatever text is still held back (a partial character at the end stays as decoded)."""
        return self._advance(tokenizer, final=True)

    def _advance(self, tokenizer: Any, final: bool) -> str:
        if self.read_offset >= len(self.tokens):
            return ""
        # The text of the previous piece is decoded again so that decoders which treat the first
        # token specially (a leading space) give the same characters as a decode of the whole row.
        before = decode(tokenizer, self.tokens[self.prefix_offset : self.read_offset])
        text = decode(tokenizer, self.tokens[self.prefix_offset :])
        if not final and (len(text) <= len(before) or text.endswith(REPLACEMENT)):
            return ""  # half of a multi-byte character: wait for the rest
        self.prefix_offset, self.read_offset = self.read_offset, len(self.tokens)
        return text[len(before) :]


class RowStreamer(BaseStreamer):
    """Feeds `on_token(row, piece)` for the rows of a batch that stream (TextIteratorStreamer serves one
    row), and keeps every row's tokens, so that any row can continue after an out-of-memory split."""

    def __init__(
        self,
        tokenizer: Any,
        rows: list[int],
        states: list[RowText],
        on_token: TokenCallback,
        eos_id: int,
        streams: list[bool] | None = None,
    ):
        """`streams[i]`: whether row i's text is sent (default: every row's)."""
        self.tokenizer = tokenizer
        self.rows = rows
        self.states = states
        self.on_token = on_token
        self.eos_id = eos_id
        self.streams = streams if streams is not None else [True] * len(rows)
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        """Receive one new token per row (the first call carries the prompt, which is skipped)."""
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for index, token in enumerate(value.reshape(-1).tolist()):
            state = self.states[index]
            if state.done:
                continue  # generate pads finished rows; that padding is not text
            streams = self.streams[index]
            if token == self.eos_id:
                state.ended_by_eos = True
                if streams:
                    self._send(index, state.flush(self.tokenizer))
                continue
            if not streams:
                state.add(token)
                continue
            self._send(index, state.push(self.tokenizer, token))
            if state.done:
                self._send(index, state.flush(self.tokenizer))

    def end(self) -> None:
        """Flush what each streaming row still holds."""
        for index, state in enumerate(self.states):
            if self.streams[index]:
                self._send(index, state.flush(self.tokenizer))

    def _send(self, index: int, piece: str) -> None:
        if piece:
            self.on_token(self.rows[index], piece)

"""The stream cleaner's cost per piece on long grounded outputs: re-parsing the whole output (before) vs settled text.

    .venv/bin/python -m bench.stream_cleaner [--blocks 25 50 100 200] [--piece 4]

"Before" is the old cleaner (parse the whole raw output on every piece), rebuilt here as the baseline; "after"
is `gpu_worker.grounding.StreamCleaner`. Both run in this process on the same pieces, and both must send
exactly the final content. Prints total ms, µs per piece and the ratio for each output length.
"""

from __future__ import annotations

import argparse
import time

from gpu_worker.grounding import StreamCleaner, parse_grounded


class ReparsingCleaner:
    """The cleaner as it was: the whole raw text re-parsed on every piece (the baseline)."""

    def __init__(self) -> None:
        self.raw, self.sent = "", ""

    def feed(self, piece: str) -> str:
        self.raw += piece
        return self._advance(parse_grounded(self.raw, 1, 1)[0])

    def finish(self, final_text: str) -> str:
        return self._advance(final_text)

    def _advance(self, clean: str) -> str:
        if not clean.startswith(self.sent):
            return ""
        delta, self.sent = clean[len(self.sent) :], clean
        return delta


def grounded_output(blocks: int) -> str:
    """Grounded markdown as DeepSeek writes it: a ref/det pair before each paragraph or one-line table."""
    parts = []
    for i in range(blocks):
        box = f"[[{i % 900}, {i % 700}, {i % 900 + 90}, {i % 700 + 40}]]"
        if i % 3 == 2:
            cells = "".join(f"<td>{i}.{j} €</td>" for j in range(8))
            parts.append(f"<|ref|>table<|/ref|><|det|>{box}<|/det|>\n<table><tr>{cells}</tr></table>\n\n")
        else:
            parts.append(f"<|ref|>text<|/ref|><|det|>{box}<|/det|>\nParagraph {i}: revenue grew by {i}%.\n\n")
    return "".join(parts)


def run(cleaner_type: type, pieces: list[str], final: str) -> float:
    cleaner = cleaner_type()
    started = time.perf_counter()
    sent = "".join(cleaner.feed(piece) for piece in pieces) + cleaner.finish(final)
    elapsed = time.perf_counter() - started
    assert sent == final, f"{cleaner_type.__name__} did not add up to the final content"
    return elapsed


def main() -> None:
    """Print before/after for each output length."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--piece", type=int, default=4, help="characters per streamed piece (about a token)")
    args = parser.parse_args()
    print(f"{'blocks':>6} {'chars':>8} {'pieces':>7} {'before ms':>10} {'after ms':>9} "
          f"{'before µs/piece':>16} {'after µs/piece':>15} {'ratio':>7}")  # fmt: skip
    for blocks in args.blocks:
        raw = grounded_output(blocks)
        final = parse_grounded(raw, 1, 1)[0]
        pieces = [raw[i : i + args.piece] for i in range(0, len(raw), args.piece)]
        before = run(ReparsingCleaner, pieces, final)
        after = run(StreamCleaner, pieces, final)
        print(f"{blocks:>6} {len(raw):>8} {len(pieces):>7} {before * 1000:>10.1f} {after * 1000:>9.1f} "
              f"{before / len(pieces) * 1e6:>16.1f} {after / len(pieces) * 1e6:>15.1f} {before / after:>6.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()

"""SSE for one job: a role chunk, content deltas as the engine generates, a final chunk with `ocr`, [DONE]."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from gpu_worker.grounding import StreamCleaner
from gpu_worker.protocol import ChatCompletionChunk, ChunkChoice, DeltaMessage, GatewayTimeout, ServiceError

if TYPE_CHECKING:
    from gpu_worker.serving import Job

log = logging.getLogger(__name__)


async def sse_events(
    job: Job, model: str, deadline: float, timeout_error: Callable[[], GatewayTimeout]
) -> AsyncIterator[str]:
    """The stream of one job; an error (timeout included) is an error chunk, and [DONE] always ends it."""
    pieces: asyncio.Queue[str] = job.pieces if job.pieces is not None else asyncio.Queue()
    cleaner = StreamCleaner()

    def chunk(**kwargs: Any) -> str:
        body = ChatCompletionChunk(id=job.request_id, model=model, **kwargs).model_dump_json(
            exclude_none=True
        )
        return "data: " + body + "\n\n"

    yield chunk(choices=[ChunkChoice(delta=DeltaMessage(role="assistant", content=""))])
    assert job.task is not None
    try:
        while not job.task.done():
            getter = asyncio.ensure_future(pieces.get())
            remaining = deadline - time.perf_counter()
            done, _ = await asyncio.wait({getter, job.task}, timeout=max(remaining, 0.001))
            if getter in done:
                delta = cleaner.feed(getter.result())
                if delta:
                    yield chunk(choices=[ChunkChoice(delta=DeltaMessage(content=delta))])
            else:
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
            if not done:
                raise timeout_error()
        response = await job.task
        rest = ""
        while not pieces.empty():
            rest += cleaner.feed(pieces.get_nowait())
        rest += cleaner.finish(response.choices[0].message.content)
        if rest:
            yield chunk(choices=[ChunkChoice(delta=DeltaMessage(content=rest))])
        yield chunk(
            choices=[ChunkChoice(delta=DeltaMessage(), finish_reason=response.choices[0].finish_reason)],
            usage=response.usage,
            ocr=response.ocr,
        )
    except ServiceError as exc:
        yield "data: " + json.dumps(exc.to_body()) + "\n\n"
    except Exception as exc:  # never end a stream without its error chunk and [DONE]
        log.exception("stream %s failed", job.request_id)
        yield (
            "data: " + json.dumps(ServiceError(f"Internal error ({type(exc).__name__}).").to_body()) + "\n\n"
        )
    yield "data: [DONE]\n\n"

"""SSE for one job: a role chunk, content deltas as the engine generates, a final chunk with `ocr`, [DONE]."""

from __future__ import annotations

import asyncio
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
    getter: asyncio.Future[str] | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.ensure_future(pieces.get())
            remaining = deadline - time.perf_counter()
            # FIRST_COMPLETED: a piece goes out the moment it arrives, and the job's end ends the wait even
            # when no piece ever comes (the default, ALL_COMPLETED, held such a stream open to the deadline).
            waiting: set[asyncio.Future[Any]] = {getter, job.task}
            done, _ = await asyncio.wait(
                waiting, timeout=max(remaining, 0.001), return_when=asyncio.FIRST_COMPLETED
            )
            if getter in done:  # before the job's end: a piece that came with it is still sent in order
                delta = cleaner.feed(getter.result())
                getter = None
                if delta:
                    yield chunk(choices=[ChunkChoice(delta=DeltaMessage(content=delta))])
            elif job.task in done:
                break
            else:
                raise timeout_error()
        if job.task.cancelled():  # shutdown cancelled the job: say so rather than end without a word
            raise ServiceError("The request was cancelled before it finished.", code="cancelled")
        response = await job.task
        rest = ""
        while not pieces.empty():
            rest += cleaner.feed(pieces.get_nowait())
        # A document streamed only its first page: the pages after it are sent whole, whatever that stream
        # was (`finish` sends nothing more of a text the stream did not match).
        content = response.choices[0].message.content
        first = response.ocr.pages[0].text if response.ocr.pages else content
        rest += cleaner.finish(first) + content[len(first) :]
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
    finally:  # a client that left, or an error: no get() may stay waiting on the queue
        if getter is not None:
            getter.cancel()
    yield "data: [DONE]\n\n"

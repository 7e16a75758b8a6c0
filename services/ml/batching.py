"""Dynamic micro-batching: concurrent requests share one forward pass.

Callers `await batcher.embed(texts)`; each text becomes a queue item with its own future.
One collector task takes the first waiting item, gathers more for up to `max_wait` seconds,
and runs forward passes on a single inference thread, so the event loop (health checks,
new requests) stays responsive. While a pass runs, new items queue up and form the next
batch: under load batches fill without waiting at all.

Length bucketing (`max_tokens` > 0 and a `measure` function): every batch pads to its
longest text, so a mixed batch of short and long texts spends most of its work on padding.
The collector gathers up to `PENDING_FACTOR x max_batch` texts, sorts them by token length
and cuts them into batches of at most `max_batch` texts and `max_tokens` padded tokens
(`plan_batches`); all of them run before the next gather, so a long text is never starved
by a stream of short ones. Without it (max_tokens=0), batches are first come first served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from opentelemetry import trace

from .model import Vectors

log = logging.getLogger(__name__)

EncodeFn = Callable[[Sequence[str]], Vectors]
MeasureFn = Callable[[Sequence[str]], list[int]]  # tokens per text
BatchObserver = Callable[[int, float], None]  # (batch size, forward seconds)
# How many batches' worth of texts one bucketing gather may take: enough to sort into
# similar lengths, few enough that the last of them does not wait long.
PENDING_FACTOR = 4


def plan_batches(lengths: Sequence[int], *, max_batch: int, max_tokens: int) -> list[list[int]]:
    """Indices of `lengths` grouped into batches: shortest first, each batch at most
    `max_batch` texts and `batch size x its longest length <= max_tokens` padded tokens.
    A text longer than the cap on its own gets a batch of its own. Stable: equal lengths
    keep their arrival order. max_tokens=0 means no cap (and no sorting)."""
    if max_tokens <= 0:
        indices = list(range(len(lengths)))
        return [indices[i : i + max_batch] for i in range(0, len(indices), max_batch)]
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        longest = lengths[index]  # ascending order: the newcomer is the longest so far
        if current and (len(current) >= max_batch or (len(current) + 1) * longest > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


@dataclass(slots=True)
class _Item:
    text: str
    future: asyncio.Future[np.ndarray]
    span: trace.SpanContext | None = field(default=None)


class MicroBatcher:
    def __init__(
        self,
        encode: EncodeFn,
        *,
        max_batch: int,
        max_wait: float,
        max_tokens: int = 0,
        measure: MeasureFn | None = None,
        observe: BatchObserver | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._encode = encode
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_tokens = max_tokens if measure is not None else 0
        self._measure = measure
        self._observe = observe
        self._tracer = tracer or trace.NoOpTracer()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ml-inference")
        self._task: asyncio.Task[None] | None = None
        self._held: list[_Item] = []  # taken from the queue, not answered yet
        self.last_batch_size = 0
        self.forward_passes = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._collect(), name="ml-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        leftover = [*self._held, *(self._queue.get_nowait() for _ in range(self._queue.qsize()))]
        for item in leftover:
            if not item.future.done():
                item.future.set_exception(RuntimeError("inference service is shutting down"))
        self._executor.shutdown(wait=True)

    async def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One vector per text, in order. Texts are queued individually so a large request
        is spread over batches shared with other callers."""
        if not self.running:
            raise RuntimeError("batcher is not running")
        loop = asyncio.get_running_loop()
        span = trace.get_current_span().get_span_context()
        items = [_Item(t, loop.create_future(), span if span.is_valid else None) for t in texts]
        for item in items:
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(i.future for i in items)))

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        bucketed = self.max_tokens > 0
        while True:
            limit = self.max_batch * PENDING_FACTOR if bucketed else self.max_batch
            pending = self._held = await self._gather(loop, limit)
            for batch in await self._plan(loop, pending):
                # Callers that went away (client disconnect) need no forward pass.
                batch = [item for item in batch if not item.future.done()]
                if batch:
                    await self._run(loop, batch)

    async def _plan(self, loop: asyncio.AbstractEventLoop, items: list[_Item]) -> list[list[_Item]]:
        if self.max_tokens <= 0 or self._measure is None or len(items) == 1:
            return [items]
        texts = [item.text for item in items]
        try:  # one tokenizer call for all, on the inference thread (cheap next to a pass)
            lengths = await loop.run_in_executor(self._executor, self._measure, texts)
        except Exception:
            log.exception("measuring %d texts failed; batching them in arrival order", len(items))
            lengths = [0] * len(items)
        plan = plan_batches(lengths, max_batch=self.max_batch, max_tokens=self.max_tokens)
        return [[items[i] for i in batch] for batch in plan]

    async def _gather(self, loop: asyncio.AbstractEventLoop, limit: int) -> list[_Item]:
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait
        while len(batch) < limit:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            if len(batch) >= self.max_batch:
                break  # a full batch is waiting: don't hold it for more
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        texts = [item.text for item in batch]
        links = [trace.Link(item.span) for item in batch if item.span is not None]
        # The forward span links every request it serves (it has many parents, not one).
        with self._tracer.start_as_current_span(
            "ml.forward", links=links, attributes={"ml.batch_size": len(batch)}
        ):
            start = time.perf_counter()
            try:
                vectors = await loop.run_in_executor(self._executor, self._encode, texts)
            except Exception as exc:  # every waiting caller gets the failure
                log.exception("forward pass of %d texts failed", len(batch))
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            finally:
                self.last_batch_size = len(batch)
                self.forward_passes += 1
                if self._observe is not None:
                    self._observe(len(batch), time.perf_counter() - start)
        for item, vector in zip(batch, vectors, strict=True):
            if not item.future.done():
                item.future.set_result(vector)

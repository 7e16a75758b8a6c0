"""Dynamic micro-batching: concurrent requests share one forward pass.

Callers `await batcher.embed(texts)`; each text becomes a queue item with its own future.
One collector task takes the first waiting item, then gathers more until `max_batch` texts
or `max_wait` seconds, and runs the forward pass on a single inference thread, so the
event loop (health checks, new requests) stays responsive. While a pass runs, new items
queue up and form the next batch: under load batches fill without waiting at all.
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
BatchObserver = Callable[[int, float], None]  # (batch size, forward seconds)


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
        observe: BatchObserver | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._encode = encode
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._observe = observe
        self._tracer = tracer or trace.NoOpTracer()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ml-inference")
        self._task: asyncio.Task[None] | None = None
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
        while not self._queue.empty():
            item = self._queue.get_nowait()
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
        while True:
            batch = await self._gather(loop)
            # Callers that went away (client disconnect) need no forward pass.
            batch = [item for item in batch if not item.future.done()]
            if batch:
                await self._run(loop, batch)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> list[_Item]:
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
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

"""Consume `document.ingest.requested`: validate, hand to a handler, then ack, retry or dead-letter.

The broker side of the worker, independent of what a job does:

* at most `prefetch` unacked messages per worker (each handled in its own task);
* a message is acked only after the handler returned (for ingestion: after Weaviate
  confirmed every write), or after its retry copy / dead letter was confirmed by the broker.
  Dying before that leaves it unacked, so the broker hands it to another worker;
* an invalid body (not JSON, wrong schema, wrong type for this queue) goes to the DLQ with
  the reason in `x-indexforge-reason`, and the consumer carries on with the next message;
* `Retry(delay)` publishes a copy to the retry queue of that delay (`topology.py`) with the
  attempt count + 1 in `x-indexforge-attempt`; expiry dead-letters it back to the ingest
  queue;
* a broken connection (broker restart) is reconnected with backoff, forever: messages that
  were in flight are redelivered by the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from .connection import consume_forever, open_round, republish
from .metrics import QueueMetrics
from .retry import Decision, after_failure
from .schemas import IngestRequested, InvalidMessage, parse
from .topology import (
    ATTEMPT_HEADER,
    REASON_HEADER,
    Names,
    Topology,
    declare,
    declare_retry,
    delay_ms,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 2.0
    cap_seconds: float = 300.0

    def after(self, reason: str, attempt: int) -> Decision:
        return after_failure(
            reason,
            attempt,
            max_attempts=self.max_attempts,
            base=self.base_seconds,
            cap=self.cap_seconds,
        )


# The handler's answer: None when done (ack), else a decision (retry or dead-letter; "fail"
# means the handler already failed the job for good, so the message is acked).
Handler = Callable[[IngestRequested, int], Awaitable[Decision | None]]


def attempt_of(message: AbstractIncomingMessage) -> int:
    """1-based attempt of this delivery (retries carry it in a header)."""
    try:
        return max(1, int(str((message.headers or {}).get(ATTEMPT_HEADER, 1))))
    except ValueError:
        return 1


class Consumer:
    def __init__(
        self,
        url: str,
        names: Names,
        handler: Handler,
        *,
        prefetch: int,
        policy: RetryPolicy,
        metrics: QueueMetrics | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.metrics = metrics
        self.url = url
        self.names = names
        self.handler = handler
        self.prefetch = prefetch
        self.policy = policy
        self.connect_timeout = connect_timeout
        self.consuming = asyncio.Event()  # set while a consumer is registered (tests, health)
        self._channel: AbstractChannel | None = None
        self._topology: Topology | None = None
        self._tag: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._retry_queues: set[int] = set()  # delays (ms) declared on the current channel

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self, *, grace_seconds: float = 8.0) -> None:
        """Stop taking messages, let the ones in hand finish (within the grace period: the
        pod's termination grace is longer), then disconnect. A job still running after that
        is not acked, so the broker hands it to another worker."""
        topology, tag = self._topology, self._tag
        if topology is not None and tag is not None:
            try:
                await asyncio.wait_for(topology.ingest.cancel(tag), timeout=2.0)
            except Exception as exc:  # the connection may be gone already
                log.debug("cancelling the consumer failed: %s", exc)
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=grace_seconds)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        await consume_forever(self._consume_until_closed, what="ingest consumer")

    async def _consume_until_closed(self) -> None:
        try:
            async with open_round(
                self.url, prefetch=self.prefetch, timeout=self.connect_timeout
            ) as current:
                self._topology = await declare(current.channel, self.names)
                self._channel = current.channel
                self._tag = await self._topology.ingest.consume(self._on_message)
                self.consuming.set()
                if self.metrics is not None:
                    self.metrics.consuming.set(1)
                log.info("consuming %s (prefetch %d)", self.names.ingest, self.prefetch)
                await current.closed.wait()
        finally:
            self.consuming.clear()
            if self.metrics is not None:
                self.metrics.consuming.set(0)
            self._channel = self._topology = None
            self._tag = None
            self._retry_queues = set()

    # -- one message ------------------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        try:
            await self._handle(message)
        except asyncio.CancelledError:
            raise  # shutting down: unacked, so the broker redelivers it elsewhere
        except Exception as exc:  # the broker went away mid-way: it will redeliver
            log.warning("message %s left unacked: %s", message.message_id, exc)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            request = parse(message.body)
            if not isinstance(request, IngestRequested):
                raise InvalidMessage(f"a {request.type} message does not belong on this queue")
        except InvalidMessage as exc:
            log.warning("dead-lettering message %s: %s", message.message_id, exc.reason)
            await self._dead_letter(message, exc.reason)
            self._count("invalid")
            return
        attempt = attempt_of(message)
        try:
            decision = await self.handler(request, attempt)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in the handler: retried like any internal failure
            log.exception("handling %s crashed", request.payload.job_id)
            decision = self.policy.after("internal", attempt)
        if decision is None or decision.action == "fail":
            await message.ack()
            self._count("done" if decision is None else "failed")
        elif decision.action == "retry":
            await self._retry(message, attempt + 1, decision.delay_seconds)
            self._count("retried")
        else:
            await self._dead_letter(message, decision.why, attempt=attempt)
            self._count("exhausted")

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.messages.labels(outcome).inc()

    async def _retry(self, message: AbstractIncomingMessage, attempt: int, delay: float) -> None:
        channel = self._require_channel()
        queue = await self._retry_queue(channel, delay_ms(delay))
        await republish(channel, message, queue, {ATTEMPT_HEADER: attempt})
        await message.ack()

    async def _retry_queue(self, channel: AbstractChannel, delay: int) -> str:
        """Declared on first use per channel (the delays follow from the retry policy)."""
        if delay not in self._retry_queues:
            await declare_retry(channel, self.names, delay)
            self._retry_queues.add(delay)
        return self.names.retry(delay)

    async def _dead_letter(
        self, message: AbstractIncomingMessage, reason: str, *, attempt: int | None = None
    ) -> None:
        channel = self._require_channel()
        headers: dict[str, Any] = {REASON_HEADER: reason[:500]}
        if attempt is not None:
            headers[ATTEMPT_HEADER] = attempt
        await republish(channel, message, self.names.dead, headers)
        await message.ack()

    def _require_channel(self) -> AbstractChannel:
        if self._channel is None:
            raise ConnectionError("no broker channel")
        return self._channel

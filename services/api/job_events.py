"""Job status projected from the job outcome events (queue mode).

A worker does not write a job's final status itself: it publishes `document.indexed` or
`document.failed` (with a publisher confirm, before it acks the ingest message), and this
projection, consuming `<prefix>.jobs`, turns each event into the job's record. So the
record and the event stream cannot disagree: an outcome whose event was not confirmed is
not an outcome (the job is retried and publishes it again), and a record lost with Redis is
rebuilt from the next delivery of its event. The API writes only the first `queued` record
(the client reads it right after its 202) and workers only progress (`processing`, stage,
`queued` again before a retry).

Projection is idempotent and order-tolerant: the first terminal event of a job wins, a
later duplicate (redelivery, a worker that re-ran a job whose event was still in flight)
changes nothing. A record the projection cannot write (Redis down) keeps the event unacked
and is retried in place with backoff, so outcomes wait for Redis instead of being lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from prometheus_client import CollectorRegistry, Counter

from ..messaging.connection import consume_forever, open_round, republish
from ..messaging.schemas import DocumentFailed, DocumentIndexed, InvalidMessage, parse
from ..messaging.topology import REASON_HEADER, Names, declare
from .jobs import TERMINAL, JobStore

log = logging.getLogger(__name__)

Outcome = DocumentIndexed | DocumentFailed
RESULTS = ("applied", "duplicate", "invalid")
WRITE_RETRY_MAX_SECONDS = 10.0


def project(record: dict[str, Any] | None, event: Outcome, *, now: float) -> dict[str, Any] | None:
    """The job record after `event`, or None when the event changes nothing (pure)."""
    if record is not None and record.get("status") in TERMINAL:
        return None  # the first outcome wins; redeliveries and late duplicates are no-ops
    p = event.payload
    base: dict[str, Any] = dict(record) if record is not None else {
        "id": p.job_id,
        "document_id": p.document_id,
        "created_at": now,
        "correlation_id": event.correlation_id,
    }  # fmt: skip
    base.update(stage=None, updated_at=now, event_id=str(event.id))
    if isinstance(event, DocumentIndexed):
        done = event.payload
        base.update(
            status="completed",
            records=done.records,
            written=done.written,
            added=done.added,
            error=None,
            reason=None,
        )
    else:
        failed = event.payload
        base.update(
            status="failed",
            written=0,
            error=failed.error,
            reason=failed.reason,
            attempts=failed.attempts,
        )
    return base


class JobEventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "api_job_events_total",
            "Job outcome events projected into job records, by event type and result.",
            ["type", "result"],
            registry=registry,
        )
        for kind in ("document.indexed", "document.failed"):
            for result in RESULTS:
                self.events.labels(kind, result)


class JobProjection:
    """Consumes `<prefix>.jobs` and writes what `project` says (run by every worker)."""

    def __init__(
        self,
        url: str,
        names: Names,
        jobs: JobStore,
        *,
        metrics: JobEventMetrics | None = None,
        prefetch: int = 16,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.names = names
        self.jobs = jobs
        self.metrics = metrics
        self.prefetch = prefetch
        self.connect_timeout = connect_timeout
        self.consuming = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(consume_forever(self._round, what="job projection"))

    async def stop(self) -> None:
        """Unacked events (a write still waiting for Redis) go back to the queue."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _round(self) -> None:
        try:
            async with open_round(
                self.url, prefetch=self.prefetch, timeout=self.connect_timeout
            ) as current:
                topology = await declare(current.channel, self.names)

                async def on_message(message: AbstractIncomingMessage) -> None:
                    await self._on_message(message, current.channel)

                await topology.jobs.consume(on_message)
                self.consuming.set()
                await current.closed.wait()
        finally:
            self.consuming.clear()

    async def _on_message(self, message: AbstractIncomingMessage, channel: AbstractChannel) -> None:
        try:
            event = parse(message.body)
            if not isinstance(event, DocumentIndexed | DocumentFailed):
                raise InvalidMessage(f"a {event.type} message does not belong on this queue")
        except InvalidMessage as exc:
            log.warning("dead-lettering job event %s: %s", message.message_id, exc.reason)
            await republish(channel, message, self.names.dead, {REASON_HEADER: exc.reason[:500]})
            await message.ack()
            self._count(message.type or "unknown", "invalid")
            return
        try:
            changed = await self._apply(event)
        except asyncio.CancelledError:
            raise  # unacked: redelivered to another worker
        except Exception as exc:  # defensive: unacked, so the broker redelivers it
            log.warning("job event %s left unacked: %s", message.message_id, exc)
            return
        await message.ack()
        self._count(event.type, "applied" if changed else "duplicate")

    async def _apply(self, event: Outcome) -> bool:
        """Write the projected record, waiting out a Redis outage (backoff capped at 10 s;
        the event stays unacked meanwhile)."""
        delay = 0.5
        while True:
            try:
                changed = await self.jobs.transform(
                    event.payload.job_id, lambda record: project(record, event, now=time.time())
                )
                return changed is not None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "job %s: cannot record %s (%s); retrying in %.1fs",
                    event.payload.job_id, event.type, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(WRITE_RETRY_MAX_SECONDS, delay * 2)

    def _count(self, kind: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.events.labels(kind, result).inc()

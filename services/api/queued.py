"""Ingestion through RabbitMQ (`ingest_mode=queue`): the API's submit and the worker's handler.

API: the checked upload is spooled in the app Redis (`messaging/payloads.py`), then
`document.ingest.requested` is published with a publisher confirm; only then does the
client get 202. A broker that does not confirm is `QueueUnavailable` (the route answers
503 `queue_unavailable` with Retry-After) and the job is marked failed at once.

Worker: the same steps as an in-process job (`Ingestor.attempt`), but its outcome decides
what happens to the message (`messaging/retry.py`): done -> ack; our infrastructure failed
-> the job goes back to `queued` and the message is retried later; the input was refused
or the attempts are used up -> the job fails, what the document's earlier attempts wrote
is rolled back, and (attempts used up) the message is dead-lettered. The terminal job
state is the event published for it (`document.indexed` / `document.failed`): the worker
does not write it, the job projection does (`job_events.py`). The ingest message is acked
only after the broker confirmed that event; an outcome it did not confirm is retried like
any infrastructure failure (`queue_unavailable`).

Redelivery is harmless: object ids are derived from the content (`common/identity.py`)
and the writer merges references, so a second run of a job writes nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import socket
from typing import Any

from ..messaging.consumer import RetryPolicy
from ..messaging.payloads import Payload, PayloadStore, PayloadUnavailable
from ..messaging.publisher import Publisher, QueueUnavailable
from ..messaging.retry import Decision
from ..messaging.schemas import (
    DeletedPayload,
    DocumentDeleted,
    DocumentFailed,
    DocumentIndexed,
    FailedPayload,
    IndexedPayload,
    IngestRequested,
    IngestRequestedPayload,
    Message,
)
from .ingest import Attempt, IngestFailed, Ingestor
from .jobs import JobStore, public_error
from .uploads import Prepared

log = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def _read_all(prepared: Prepared) -> bytes | None:
    if prepared.workbook is None:
        return None
    prepared.workbook.seek(0)
    return prepared.workbook.read()


class QueuedIngest:
    def __init__(
        self,
        *,
        ingestor: Ingestor,
        jobs: JobStore,
        payloads: PayloadStore,
        publisher: Publisher,
        policy: RetryPolicy,
    ) -> None:
        self.ingestor = ingestor
        self.jobs = jobs
        self.payloads = payloads
        self.publisher = publisher
        self.policy = policy

    # -- API side ---------------------------------------------------------------------------

    async def submit(self, job: dict[str, Any], prepared: Prepared) -> None:
        """Spool and publish; returns once the broker confirmed. Raises QueueUnavailable."""
        try:
            workbook = await asyncio.to_thread(_read_all, prepared)
        finally:
            prepared.close()
        payload = Payload(
            kind=prepared.kind,
            source=prepared.source,
            digest=prepared.digest,
            size=prepared.size,
            records=prepared.records,
            workbook=workbook,
        )
        job_id = str(job["id"])
        try:
            key = await self.payloads.put(job_id, payload)
        except PayloadUnavailable as exc:
            await self._refused(job, "the job store (Redis) is unavailable")
            raise QueueUnavailable("the job store is unavailable") from exc
        message = IngestRequested(
            correlation_id=job.get("correlation_id"),
            payload=IngestRequestedPayload(
                job_id=job_id,
                document_id=str(job["document_id"]),
                kind=prepared.kind,
                source=prepared.source,
                payload_key=key,
                records=len(prepared.records),
                size=prepared.size,
            ),
        )
        try:
            await self.publisher.publish(message)
        except QueueUnavailable:
            await self._refused(job, "the ingestion queue is unavailable")
            await self._forget(key)
            raise

    async def _refused(self, job: dict[str, Any], why: str) -> None:
        """The client got 503: the job never ran (a record left `queued` would lie)."""
        try:
            await self.jobs.update(
                job, status="failed", reason="queue_unavailable", error=f"{why}; upload again"
            )
        except Exception as exc:  # the 503 matters more than the record
            log.warning("could not mark job %s failed: %s", job["id"], exc)

    async def deleted(self, document_id: str, records: int) -> None:
        """Announce a deletion (best effort: the deletion itself is done)."""
        event = DocumentDeleted(payload=DeletedPayload(document_id=document_id, records=records))
        await self._announce(event)

    async def _announce(self, event: Message) -> None:
        try:
            await self.publisher.publish(event)
        except QueueUnavailable as exc:
            log.warning("event %s not published: %s", event.type, exc)

    # -- worker side ------------------------------------------------------------------------

    async def handle(self, request: IngestRequested, attempt: int) -> Decision | None:
        p = request.payload
        job = await self.jobs.get(p.job_id) or await self.jobs.create(
            p.job_id,  # the record expired or Redis lost it: the message is the truth
            document_id=p.document_id, source=p.source, kind=p.kind, records=p.records,
            correlation_id=request.correlation_id,
        )  # fmt: skip
        if job.get("status") == "completed":
            log.info("job %s already completed (redelivery)", p.job_id)
            await self._forget(p.payload_key)
            return None
        try:
            payload = await self.payloads.get(p.payload_key)
        except PayloadUnavailable:
            decision = self.policy.after("redis_unavailable", attempt)
            if decision.action == "retry":
                await self.jobs.update(job, status="queued", reason="redis_unavailable")
                return decision
            down = IngestFailed("redis_unavailable", "the job store (Redis) is unavailable")
            return await self._give_up(request, job, down, attempt, wrote=False)
        if payload is None:
            expired = IngestFailed("payload_expired", "the upload expired before it was indexed")
            return await self._give_up(request, job, expired, attempt, wrote=False)
        prepared = Prepared(
            payload.kind,  # type: ignore[arg-type]  # checked by the API that spooled it
            payload.source,
            payload.records,
            workbook=io.BytesIO(payload.workbook) if payload.workbook is not None else None,
            digest=payload.digest,
            size=payload.size,
        )
        job.update(attempts=attempt, worker=WORKER_ID)
        state = Attempt()
        try:
            written, added = await self.ingestor.attempt(job, prepared, state)
        except IngestFailed as exc:
            decision = self.policy.after(exc.reason, attempt)
            if decision.action == "retry":
                log.info("job %s: %s; retry in %.1fs", p.job_id, exc.reason, decision.delay_seconds)
                await self.jobs.update(job, status="queued", stage=None, reason=exc.reason)
                return decision
            # An earlier attempt may have written part of a new document: roll it back too.
            wrote = state.wrote or bool(job.get("new_document"))
            return await self._give_up(request, job, exc, attempt, wrote=wrote, prepared=prepared)
        finally:
            prepared.close()
        await self.ingestor.complete(job, prepared, written=written, added=added, record=False)
        outcome = await self._outcome(
            attempt,
            DocumentIndexed(
                correlation_id=request.correlation_id,
                payload=IndexedPayload(
                    job_id=p.job_id,
                    document_id=p.document_id,
                    records=int(job.get("records") or 0),
                    written=written,
                    added=added,
                ),
            ),
        )
        if outcome is not None:
            return outcome
        await self._forget(p.payload_key)
        return None

    async def _give_up(
        self,
        request: IngestRequested,
        job: dict[str, Any],
        exc: IngestFailed,
        attempt: int,
        *,
        wrote: bool,
        prepared: Prepared | None = None,
    ) -> Decision:
        p = request.payload
        decision = self.policy.after(exc.reason, attempt)
        placeholder = prepared or Prepared(p.kind, p.source, [])
        await self.ingestor.fail(job, placeholder, exc, wrote=wrote, record=False)
        unconfirmed = await self._outcome(
            attempt,
            DocumentFailed(
                correlation_id=request.correlation_id,
                payload=FailedPayload(
                    job_id=p.job_id,
                    document_id=p.document_id,
                    reason=exc.reason[:64],
                    error=public_error(exc.reason, exc.message)[:2000],
                    attempts=attempt,
                ),
            ),
        )
        if unconfirmed is not None:
            return unconfirmed
        await self._forget(p.payload_key)
        # A verdict on the input just fails; a retryable failure out of attempts is poison.
        return decision if decision.action == "dead_letter" else Decision("fail", why=exc.reason)

    async def _outcome(
        self, attempt: int, event: DocumentIndexed | DocumentFailed
    ) -> Decision | None:
        """Publish a job's outcome; None once confirmed, else the retry of the whole job
        (idempotent: a re-run writes nothing new and publishes the outcome again)."""
        try:
            await self.publisher.publish(event)
        except QueueUnavailable as exc:
            log.warning("job %s: outcome not confirmed (%s)", event.payload.job_id, exc)
            return self.policy.after("queue_unavailable", attempt)
        return None

    async def _forget(self, key: str) -> None:
        with contextlib.suppress(PayloadUnavailable):  # else it expires with its TTL
            await self.payloads.delete(key)

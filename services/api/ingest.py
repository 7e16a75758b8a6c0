"""Ingestion jobs: (workbook -> Excel processor) -> embeddings -> Weaviate, in batches.

Only texts not stored yet are embedded and added; rows whose text is already stored join
that object (`content.py`). Document ids come from the upload's content, so a file
uploaded again is the same document and its job changes nothing.

A job runs as a task of the API process, at most `ingest_concurrency` at once; it
inherits the request's context, so its calls to the Excel processor and the ML service
continue the upload's trace and carry its correlation id. Nothing half-written survives a
failure: if a batch of a new document fails, every reference of the document written so
far is removed (a failed re-upload of a stored document leaves it as it was); if Weaviate
itself is what failed, the removal is retried in the background until it succeeds. The
search cache is invalidated whenever a job changed what is stored.

With `ingest_mode=queue` the job runs in a worker instead (`queued.py`): the same
`attempt`, whose outcome then decides between ack, a delayed retry and the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import sentry_sdk
from opentelemetry import trace

from ..common import budget as budget_
from ..common.budget import OutputBudgetExceeded
from ..common.cache import Cache
from ..common.tabular import Record
from .content import ContentWriter
from .jobs import JobStore, public_error
from .metrics import ApiMetrics
from .readers import budget_for
from .settings import ApiSettings
from .store import StoreUnavailable, WeaviateStore
from .uploads import Prepared
from .upstream import Upstream, UpstreamRejected, UpstreamUnavailable
from .write_lock import WriteLockUnavailable

log = logging.getLogger(__name__)

SEARCH_TAG = "search"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROLLBACK_RETRY_SECONDS = 2.0


class IngestFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Attempt:
    """What one try at a job has done so far."""

    wrote: bool = False  # writes of a new document began: a final failure rolls them back


class Ingestor:
    def __init__(
        self,
        settings: ApiSettings,
        *,
        store: WeaviateStore,
        writer: ContentWriter,
        jobs: JobStore,
        cache: Cache,
        metrics: ApiMetrics,
        excel: Upstream | None,
        ml: Upstream | None,
        tracer: trace.Tracer,
    ) -> None:
        self.settings = settings
        self.store = store
        self.writer = writer
        self.jobs = jobs
        self.cache = cache
        self.metrics = metrics
        self.excel = excel
        self.ml = ml
        self.tracer = tracer
        self.pending_rollbacks: set[str] = set()
        self._slots = asyncio.Semaphore(settings.ingest_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._janitor: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._janitor = asyncio.create_task(self._retry_rollbacks())

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._janitor] if self._janitor else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def submit(self, job: dict[str, Any], prepared: Prepared) -> None:
        task = asyncio.create_task(self._run(job, prepared))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait for the running jobs (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the job ----------------------------------------------------------------------------

    async def _run(self, job: dict[str, Any], prepared: Prepared) -> None:
        try:
            await self._ingest(job, prepared)
        finally:
            prepared.close()  # the spooled workbook's disk space goes with it

    async def _ingest(self, job: dict[str, Any], prepared: Prepared) -> None:
        async with self._slots:
            state = Attempt()
            try:
                written, added = await self.attempt(job, prepared, state)
            except IngestFailed as exc:
                await self.fail(job, prepared, exc, wrote=state.wrote)
                return
            except asyncio.CancelledError:
                shutdown = IngestFailed("shutdown", "the API shut down while the job ran")
                await asyncio.shield(self.fail(job, prepared, shutdown, wrote=state.wrote))
                raise
            await self.complete(job, prepared, written=written, added=added)

    async def attempt(
        self, job: dict[str, Any], prepared: Prepared, state: Attempt
    ) -> tuple[int, int]:
        """One try at a job: (records written, texts added) once Weaviate confirmed every
        write. Raises IngestFailed (a crash becomes `internal`); `state.wrote` tells the
        caller whether a failure left writes of a new document behind."""
        document_id = str(job["document_id"])
        with self.tracer.start_as_current_span(
            "api.ingest",
            attributes={"document.id": document_id, "document.kind": prepared.kind},
        ):
            await self.jobs.update(job, status="processing", stage="reading")
            try:
                records = prepared.records or await self._read_workbook(prepared)
                stored_before = await self._stored(document_id)
                # `new_document`: a later attempt (queue mode) knows whose writes to roll back.
                await self.jobs.update(
                    job, records=len(records), stage="writing", new_document=not stored_before
                )
                state.wrote = not stored_before  # from the first batch of a new document on
                written, added = await self._write(document_id, prepared, records)
                await self._register(document_id, prepared, len(records))
            except IngestFailed:
                raise
            except Exception as exc:  # a bug must not leave the job "processing" forever
                log.exception("ingestion job %s crashed", job["id"])
                sentry_sdk.capture_exception(exc)
                raise IngestFailed("internal", "internal error while ingesting") from exc
            return written, added

    async def complete(
        self,
        job: dict[str, Any],
        prepared: Prepared,
        *,
        written: int,
        added: int,
        record: bool = True,
    ) -> None:
        """`record=False`: the caller publishes the outcome, which the job record is projected
        from (queue mode, `job_events.py`)."""
        if record:
            await self.jobs.update(
                job, status="completed", stage=None, written=written, added=added
            )
        self.metrics.jobs.labels(prepared.kind, "completed").inc()
        self.metrics.records.inc(written)
        await self.cache.invalidate_tags(SEARCH_TAG)

    async def fail(
        self,
        job: dict[str, Any],
        prepared: Prepared,
        exc: IngestFailed,
        *,
        wrote: bool,
        record: bool = True,
    ) -> None:
        document_id = str(job["document_id"])
        log.warning("ingestion job %s failed: %s", job["id"], exc.message)
        if wrote:
            await self._rollback(document_id)
        if record:
            await self.jobs.update(
                job, status="failed", stage=None, written=0,
                error=public_error(exc.reason, exc.message), reason=exc.reason,
            )  # fmt: skip
        self.metrics.jobs.labels(prepared.kind, "failed").inc()

    async def _read_workbook(self, prepared: Prepared) -> list[Record]:
        if self.excel is None:
            raise IngestFailed("excel_unavailable", "no Excel processor is configured")
        assert prepared.workbook is not None
        try:
            response = await self.excel.request(
                "POST",
                "/api/v1/excel/parse",
                files={"file": (prepared.source or "upload.xlsx", prepared.workbook, XLSX_MIME)},
            )
        except UpstreamUnavailable as exc:
            raise IngestFailed("excel_unavailable", str(exc)) from exc
        except UpstreamRejected as exc:
            # The processor's reason (output_budget_exceeded, zip_bomb, ...) is the job's.
            raise IngestFailed(
                exc.reason or "rejected", f"the Excel processor refused the workbook: {exc.message}"
            ) from exc
        # Tens of megabytes of JSON: decoded off the event loop, and charged to this API's
        # own output budget as well (a processor with a larger one cannot flood this pod).
        records = await asyncio.to_thread(self._workbook_records, response, prepared)
        if not records:
            raise IngestFailed("rejected", "the workbook has no data rows")
        if len(records) > self.settings.max_rows:
            raise IngestFailed(
                "rejected", f"the workbook has more than {self.settings.max_rows} data rows"
            )
        return records

    def _workbook_records(self, response: httpx.Response, prepared: Prepared) -> list[Record]:
        budget = budget_for(prepared.size, self.settings)
        records: list[Record] = []
        try:
            for r in response.json().get("records", []):
                record = Record(
                    sheet=r["sheet"], row=int(r["row"]), fields=r["fields"], text=r["text"]
                )
                budget.charge(record)
                records.append(record)
        except OutputBudgetExceeded as exc:
            raise IngestFailed(budget_.REASON, exc.message) from exc
        return records

    async def _embed(self, texts: Sequence[str]) -> list[list[float]] | None:
        """Vectors from the ML service, or None to let Weaviate's module vectorize."""
        if self.ml is None:
            return None
        vectors: list[list[float]] = []
        step = self.settings.embed_batch_size
        for start in range(0, len(texts), step):
            try:
                response = await self.ml.request(
                    "POST",
                    "/api/v1/ml/embeddings",
                    json={"texts": list(texts[start : start + step])},
                )
            except UpstreamUnavailable as exc:
                raise IngestFailed("ml_unavailable", str(exc)) from exc
            except UpstreamRejected as exc:
                raise IngestFailed("rejected", f"the ML service refused: {exc.message}") from exc
            vectors.extend(response.json()["embeddings"])
        return vectors

    async def _stored(self, document_id: str) -> bool:
        """Is the document already stored (a completed earlier upload of the same file)?"""
        try:
            return await self.store.document(document_id) is not None
        except StoreUnavailable as exc:
            raise IngestFailed("weaviate_unavailable", str(exc)) from exc

    async def _register(self, document_id: str, prepared: Prepared, records: int) -> None:
        try:
            await self.store.put_document(
                document_id, source=prepared.source, kind=prepared.kind, records=records
            )
        except StoreUnavailable as exc:
            raise IngestFailed("weaviate_unavailable", str(exc)) from exc

    async def _write(
        self, document_id: str, prepared: Prepared, records: list[Record]
    ) -> tuple[int, int]:
        """Write in batches; returns (records written, distinct texts added)."""
        written = added = 0
        step = self.settings.weaviate_batch_size
        for start in range(0, len(records), step):
            try:
                counts = await self.writer.write(
                    document_id=document_id,
                    source=prepared.source,
                    kind=prepared.kind,
                    records=records[start : start + step],
                    embed=self._embed,
                )
            except WriteLockUnavailable as exc:
                raise IngestFailed("redis_unavailable", str(exc)) from exc
            except StoreUnavailable as exc:
                raise IngestFailed("weaviate_unavailable", str(exc)) from exc
            written += counts.records
            added += counts.added
        return written, added

    # -- rollback ---------------------------------------------------------------------------

    async def remove(self, document_id: str) -> tuple[int, bool]:
        """Remove a document: its references, objects left unreferenced, its entry.

        Returns the records removed and whether the document was found at all.
        """
        removed = await self.writer.remove_document(document_id, max_rows=self.settings.max_rows)
        entry = await self.store.drop_document(document_id)
        return removed, bool(removed or entry)

    async def _rollback(self, document_id: str) -> None:
        try:
            removed, _ = await self.remove(document_id)
        except StoreUnavailable:
            log.warning("rollback of %s deferred: Weaviate unavailable", document_id)
            self.pending_rollbacks.add(document_id)
            self.metrics.pending_rollbacks.set(len(self.pending_rollbacks))
            return
        if removed:
            log.info("rolled back %d objects of failed document %s", removed, document_id)
            await self.cache.invalidate_tags(SEARCH_TAG)

    async def _retry_rollbacks(self) -> None:
        while True:
            await asyncio.sleep(ROLLBACK_RETRY_SECONDS)
            for document_id in list(self.pending_rollbacks):
                try:
                    await self.remove(document_id)
                except StoreUnavailable:
                    break  # still down; try again later
                self.pending_rollbacks.discard(document_id)
                await self.cache.invalidate_tags(SEARCH_TAG)
            self.metrics.pending_rollbacks.set(len(self.pending_rollbacks))

"""Ingestion job status records, kept in the app Redis for `cache_session_ttl_seconds` (24 h).

Stored through the shared cache (msgpack, retries, breaker): while Redis is down, a job's
record lives in this pod's bounded in-process LRU, so the pod that runs the job can still
answer for it. Status moves queued -> processing -> completed | failed.

A failed job's `error` is read by clients: it says what failed in words that name no host,
URL or exception (`public_error`); `reason` is the stable code and the details are in the
log lines carrying the job's correlation id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from ..common.cache import Cache

JobStatus = Literal["queued", "processing", "completed", "failed"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed"})

# Failures whose detail is about our infrastructure, not the client's input.
PUBLIC_ERRORS: dict[str, str] = {
    "excel_unavailable": "the Excel processor is unavailable; upload again later",
    "ml_unavailable": "the embedding service is unavailable; upload again later",
    "weaviate_unavailable": "the search backend is unavailable; upload again later",
    "internal": "internal error while ingesting",
    "redis_unavailable": "the job store is unavailable; upload again later",
}


def public_error(reason: str, message: str) -> str:
    """What a client may read about a failure: `message` only when it is about the input
    (`rejected`: the upstream's verdict on the file) or our own words (`shutdown`)."""
    return PUBLIC_ERRORS.get(reason, message)


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    def __init__(self, cache: Cache, *, ttl: float) -> None:
        self.cache = cache
        self.ttl = ttl

    @staticmethod
    def key(job_id: str) -> str:
        return f"job:{job_id}"

    async def create(self, job_id: str, **fields: Any) -> dict[str, Any]:
        now = time.time()
        record = {
            "id": job_id,
            "status": "queued",
            "created_at": now,
            "updated_at": now,
            "records": 0,
            "written": 0,
            "error": None,
            "reason": None,
            **fields,
        }
        await self.cache.set(self.key(job_id), record, ttl=self.ttl)
        return record

    async def update(self, record: dict[str, Any], **changes: Any) -> dict[str, Any]:
        record.update(changes, updated_at=time.time())
        await self.cache.set(self.key(record["id"]), record, ttl=self.ttl)
        return record

    async def transform(
        self, job_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Replace the record in Redis by `change(record)` atomically (None: leave it); raises
        CacheUnavailable/CacheFull rather than keeping a copy only this process holds."""

        def on_value(value: Any | None) -> dict[str, Any] | None:
            return change(value if isinstance(value, dict) else None)

        result: dict[str, Any] | None = await self.cache.transform(
            self.key(job_id), on_value, ttl=self.ttl
        )
        return result

    async def get(self, job_id: str) -> dict[str, Any] | None:
        entry = await self.cache.get_entry(self.key(job_id))
        if entry is None or not isinstance(entry.value, dict):
            return None
        return entry.value

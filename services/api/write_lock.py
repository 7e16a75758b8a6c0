"""The lock around read-merge-write of content objects (`content.py`).

An object's references are read, merged and written back; two writers doing that to the
same object at once lose one document's rows. Within one process an asyncio lock is
enough (inline ingestion). Queue workers are many processes, so in queue mode the lock is
also held in the shared app Redis (one per collection): only the short merge-and-write
section is serialised, never the embedding, which runs before it.

The Redis lock expires after `ttl` seconds, so a worker killed while holding it blocks the
others for at most that long; `ttl` covers the two Weaviate calls made under the lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from .store import StoreUnavailable

log = logging.getLogger(__name__)

WriteLock = Callable[[], AbstractAsyncContextManager[None]]


class WriteLockUnavailable(StoreUnavailable):
    """Redis could not be reached, or the lock was not free in time. A StoreUnavailable:
    whoever handles a write failing (rollback deferral, 503 of a delete) handles this too."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, public="the job store is unavailable", code="redis_unavailable")


def process_lock() -> WriteLock:
    lock = asyncio.Lock()

    @asynccontextmanager
    async def held() -> AsyncIterator[None]:
        async with lock:
            yield

    return held


def redis_lock(redis: Redis, name: str, *, ttl: float) -> WriteLock:
    """The process lock, then the Redis lock `name` (waiting up to `ttl` for it: by then a
    dead holder's lock has expired)."""
    local = asyncio.Lock()

    @asynccontextmanager
    async def held() -> AsyncIterator[None]:
        async with local:
            lock = redis.lock(name, timeout=ttl, blocking_timeout=ttl)
            try:
                acquired = await lock.acquire()
            except RedisError as exc:
                raise WriteLockUnavailable(f"write lock: {exc}") from exc
            if not acquired:
                raise WriteLockUnavailable(f"write lock not free within {ttl:.0f}s")
            try:
                yield
            finally:
                try:
                    await lock.release()
                except (LockError, RedisError) as exc:  # expired meanwhile, or Redis gone
                    log.warning("releasing the write lock failed: %s", exc)

    return held

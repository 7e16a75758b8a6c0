"""The state Redis: what the API keeps in Redis and must not lose to eviction.

The app Redis is a cache (`allkeys-lru`): under memory pressure it drops any key. Job
records, queued uploads (`messaging/payloads.py`), the tag sets that make cache invalidation
work and the cross-process write lock are state, so they live in their own Redis instance
running `noeviction` (the operator's `redis.state`, AOF on). A separate *database* of the
cache Redis would not do: maxmemory and maxmemory-policy are per instance, so an
`allkeys-lru` instance evicts from every database alike.

`noeviction` turns a full Redis into refused writes (OOM errors) instead of silent loss:
the job store raises `CacheFull` (the upload answers 503 `job_store_full`), a queued upload
that cannot be spooled is a 503 too and its job is marked failed.

With `state_redis_sentinels` the client asks Sentinel for the current primary
(`master_for`) on every new connection, so after a failover the next call reaches the
promoted replica. Unset state settings fall back to the cache Redis (a local single-Redis
setup), with a warning.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from ..common.cache import Cache, CacheMetrics, redis_client
from .settings import ApiSettings

log = logging.getLogger(__name__)


def parse_sentinels(raw: str) -> list[tuple[str, int]]:
    """`host:port,host:port` -> [(host, port)]; a malformed entry is a ValueError."""
    out = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port in state_redis_sentinels, got {item!r}")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError("state_redis_sentinels lists no sentinel")
    return out


def _db(url: str | None) -> int:
    path = urlsplit(url).path.strip("/") if url else ""
    return int(path) if path.isdigit() else 0


def state_redis(settings: ApiSettings) -> Redis | None:
    """A client of the state Redis (through Sentinel when configured); None without any Redis."""
    timeout = settings.redis_socket_timeout_seconds
    password = settings.resolved_state_redis_password()
    if settings.state_redis_sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            parse_sentinels(settings.state_redis_sentinels),
            # Sentinels run with the state Redis password (requirepass in sentinel.conf).
            sentinel_kwargs={
                "password": password,
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
            },
        )
        master: Redis = sentinel.master_for(
            settings.state_redis_master,
            password=password,
            db=_db(settings.state_redis_url),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # the callers retry (and break) themselves
            health_check_interval=0,
        )
        return master
    if settings.state_redis_url:
        return redis_client(
            settings.state_redis_url,
            socket_timeout=timeout,
            password=password,
            password_file=settings.state_redis_password_file,
        )
    if settings.redis_url:
        log.warning(
            "no state Redis configured (INDEXFORGE_STATE_REDIS_URL): job records, queued "
            "uploads and cache tags share the cache Redis, whose eviction can drop them"
        )
        return redis_client(
            settings.redis_url,
            socket_timeout=timeout,
            password=password,
            password_file=settings.redis_password_file,
        )
    return None


def state_cache(settings: ApiSettings, redis: Redis | None, registry: CollectorRegistry) -> Cache:
    """The job store's Cache over the state Redis: a full Redis raises, writes wait for
    `state_redis_wait_replicas` replicas. While the state Redis is unreachable, a job's
    record is kept in this pod's LRU (the pod running the job can still answer for it)."""
    return Cache(
        redis,
        metrics=CacheMetrics(registry, "api-state"),
        namespace=settings.cache_namespace,
        local_max_entries=settings.cache_local_max_entries,
        retry_attempts=settings.redis_retry_attempts,
        failure_threshold=settings.breaker_failure_threshold,
        reset_seconds=settings.breaker_reset_seconds,
        raise_when_full=True,
        wait_replicas=settings.state_redis_wait_replicas,
        wait_timeout_ms=settings.state_redis_wait_timeout_ms,
    )

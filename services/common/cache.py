"""A Redis-backed cache any service can use: `await cache.get_or_compute(key, compute)`.

- Entries are msgpack `[format, fresh_until, value]` with a Redis TTL of ttl + stale window,
  so every key is volatile (the service Redis runs `volatile-lru`).
- Stale-while-revalidate: an entry past `fresh_until` but still in Redis is returned at once
  and refreshed in the background.
- Single flight: concurrent misses of one key in this process share one computation.
  (Across pods a miss may be computed more than once; that is cheap compared to a lock.)
- Tags: `tag -> set of keys` in Redis; `invalidate_tags()` deletes the grouped keys. With
  `tag_redis` (the API's state Redis, `noeviction`) the sets live apart from the entries, so an
  evicting cache Redis cannot drop a tag set while its entries survive (a missed invalidation);
  an entry whose tags could not be recorded is not cached at all.
- A full Redis (`noeviction` refusing a write: OOM) is `CacheFull` when `raise_when_full`
  (state kept through this class must fail visibly), else the entry stays local.
- `wait_replicas`: each write is followed by WAIT; `set` returns False when fewer replicas
  than that confirmed it in time (the write stands on the primary, but a failover may lose it).
- Redis trouble: each call is retried (tenacity), failures feed a circuit breaker, and while
  Redis is unusable the cache computes through and keeps results in a bounded in-process LRU.
  The breaker stops paying timeouts on a dead Redis and lets one probe through after a while.
- Unset Redis URL: no caching at all, only single flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from weakref import WeakKeyDictionary

import msgpack
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from .breaker import BreakerState, CircuitBreaker
from .lru import BoundedLRU
from .redis_auth import RotatingPassword
from .settings import ServiceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
CacheStatus = Literal["hit", "stale", "miss"]
FORMAT = 1
# OSError covers refused/reset sockets that redis-py does not always wrap.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    OSError,
)


def _always(_: object) -> bool:
    return True


class CacheUnavailable(Exception):
    """Redis is not usable right now (breaker open or the call failed after retries)."""


class CacheFull(Exception):
    """Redis answered but refused a write: maxmemory reached under `noeviction`."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    value: Any
    fresh_until: float  # wall-clock seconds: entries are shared by pods, monotonic is not


def encode_entry(entry: CacheEntry) -> bytes:
    packed = msgpack.packb([FORMAT, entry.fresh_until, entry.value], use_bin_type=True)
    assert isinstance(packed, bytes)
    return packed


def decode_entry(raw: bytes) -> CacheEntry | None:
    """Decode an entry; anything unexpected (old format, garbage) reads as a miss."""
    try:
        data = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return None
    if not (isinstance(data, list) and len(data) == 3 and data[0] == FORMAT):
        return None
    if not isinstance(data[1], int | float):
        return None
    return CacheEntry(value=data[2], fresh_until=float(data[1]))


@dataclass(frozen=True, slots=True)
class _Families:
    lookups: Counter
    errors: Counter
    ratio: Gauge
    breaker: Gauge


# One set of metric families per registry, so a service may run several named caches.
_FAMILIES: WeakKeyDictionary[CollectorRegistry, _Families] = WeakKeyDictionary()


def _families(registry: CollectorRegistry) -> _Families:
    if registry not in _FAMILIES:
        _FAMILIES[registry] = _Families(
            lookups=Counter(
                "cache_requests_total", "Cache lookups by result.", ["cache", "result"],
                registry=registry,
            ),
            errors=Counter(
                "cache_errors_total", "Failed Redis operations by operation.",
                ["cache", "operation"], registry=registry,
            ),
            ratio=Gauge(
                "cache_hit_ratio", "Hits (fresh or stale) / lookups since start.", ["cache"],
                registry=registry,
            ),
            breaker=Gauge(
                "cache_breaker_state", "Redis circuit breaker: 0 closed, 1 half-open, 2 open.",
                ["cache"], registry=registry,
            ),
        )  # fmt: skip
    return _FAMILIES[registry]


class CacheMetrics:
    """hit/stale/miss/error counters, hit ratio and breaker state, labelled by cache name."""

    def __init__(self, registry: CollectorRegistry, name: str) -> None:
        self.registry = registry
        self.hits = 0
        self.lookups = 0
        families = _families(registry)
        self._hit = families.lookups.labels(name, "hit")
        self._stale = families.lookups.labels(name, "stale")
        self._miss = families.lookups.labels(name, "miss")
        self._errors = families.errors
        self._name = name
        families.ratio.labels(name).set_function(
            lambda: self.hits / self.lookups if self.lookups else 0.0
        )
        self.breaker = families.breaker.labels(name)

    def hit(self, *, stale: bool = False) -> None:
        self.hits += 1
        self.lookups += 1
        (self._stale if stale else self._hit).inc()

    def miss(self) -> None:
        self.lookups += 1
        self._miss.inc()

    def error(self, operation: str) -> None:
        self._errors.labels(self._name, operation).inc()


def redis_client(
    url: str,
    *,
    socket_timeout: float,
    password: str | None = None,
    password_file: Path | None = None,
) -> Redis:
    """An asyncio client with short timeouts and no built-in retries (the cache retries).

    The password is passed apart from the credential-free URL, so it never shows in a URL
    that gets logged. A refused AUTH surfaces as a ConnectionError subclass: Redis counts
    as down (breaker, `cache_errors_total`, readiness check false), the service keeps going.
    With ``password_file`` every new connection reads the password from it (redis_auth.py),
    so a rotated password is picked up without a restart.
    """
    if password_file is not None:
        provider = RotatingPassword(file=password_file, fallback=password)
        return Redis.from_url(
            url,
            credential_provider=provider,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
    return Redis.from_url(
        url,
        password=password,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


class Cache:
    def __init__(
        self,
        redis: Redis | None,
        *,
        metrics: CacheMetrics,
        namespace: str,
        default_ttl: float = 3600.0,
        stale_seconds: float = 60.0,
        local_max_entries: int = 1024,
        retry_attempts: int = 2,
        failure_threshold: int = 3,
        reset_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
        tag_redis: Redis | None = None,
        raise_when_full: bool = False,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 100,
    ) -> None:
        self.redis = redis
        self.tag_redis = tag_redis
        self.raise_when_full = raise_when_full
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.metrics = metrics
        self.namespace = namespace
        self.default_ttl = default_ttl
        self.stale_seconds = stale_seconds
        self.retry_attempts = retry_attempts
        self._clock = clock
        self._local: BoundedLRU[CacheEntry] = BoundedLRU(local_max_entries, clock=clock)
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self.breaker = CircuitBreaker(
            failure_threshold=failure_threshold,
            reset_seconds=reset_seconds,
            on_change=self._on_breaker_change,
        )

    @classmethod
    def from_settings(
        cls,
        settings: ServiceSettings,
        *,
        registry: CollectorRegistry,
        name: str,
        namespace: str | None = None,
        default_ttl: float | None = None,
    ) -> Cache:
        redis = (
            redis_client(
                settings.redis_url,
                socket_timeout=settings.redis_socket_timeout_seconds,
                password=settings.resolved_redis_password(),
                password_file=settings.redis_password_file,
            )
            if settings.redis_url
            else None
        )
        return cls(
            redis,
            metrics=CacheMetrics(registry, name),
            namespace=namespace or settings.cache_namespace,
            default_ttl=default_ttl or settings.cache_default_ttl_seconds,
            stale_seconds=settings.cache_stale_seconds,
            local_max_entries=settings.cache_local_max_entries,
            retry_attempts=settings.redis_retry_attempts,
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
        )

    @property
    def enabled(self) -> bool:
        return self.redis is not None

    def value_key(self, key: str) -> str:
        return f"{self.namespace}:v:{key}"

    def tag_key(self, tag: str) -> str:
        return f"{self.namespace}:t:{tag}"

    # -- public API -------------------------------------------------------------------------

    async def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        *,
        ttl: float | None = None,
        tags: Iterable[str] = (),
    ) -> T:
        value, _ = await self.lookup(key, compute, ttl=ttl, tags=tags)
        return value

    async def lookup(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        *,
        ttl: float | None = None,
        tags: Iterable[str] = (),
        cacheable: Callable[[T], bool] | None = None,
    ) -> tuple[T, CacheStatus]:
        """`get_or_compute` that also says where the value came from (for `X-Cache` headers).

        `cacheable(value)` False keeps a computed value out of the cache (e.g. too big).
        """
        tags = tuple(tags)
        if self.redis is None:
            self.metrics.miss()
            return await self._single_flight(key, compute, ttl, tags, store=None), "miss"
        store = cacheable or _always
        entry = await self.get_entry(key)
        if entry is not None:
            stale = entry.fresh_until <= self._clock()
            self.metrics.hit(stale=stale)
            if stale and key not in self._inflight:
                self._start(key, compute, ttl, tags, store=store)
            value: T = entry.value
            return value, "stale" if stale else "hit"
        self.metrics.miss()
        return await self._single_flight(key, compute, ttl, tags, store=store), "miss"

    async def get_entry(self, key: str) -> CacheEntry | None:
        try:
            raw = await self._redis_call("get", lambda r: r.get(self.value_key(key)))
        except CacheUnavailable:
            return self._local.get(key)
        return decode_entry(raw) if isinstance(raw, bytes) else None

    async def set(
        self, key: str, value: Any, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> bool:
        """Store an entry; True when Redis holds it (and `wait_replicas` replicas confirmed
        it), False when it was kept in this process only or not confirmed by the replicas.
        Raises CacheFull only with `raise_when_full`."""
        ttl = ttl or self.default_ttl
        entry = CacheEntry(value=value, fresh_until=self._clock() + ttl)
        raw = encode_entry(entry)
        keep = ttl + self.stale_seconds
        tags = tuple(tags)
        separate_tags = self.tag_redis is not None and self.tag_redis is not self.redis
        if tags and separate_tags and not await self._add_tags(key, tags, keep):
            # An entry whose tag is not recorded would outlive its invalidation: not cached.
            return False

        async def write(r: Redis) -> bool:
            async with r.pipeline(transaction=False) as pipe:
                pipe.set(self.value_key(key), raw, px=max(1, int(keep * 1000)))
                for tag in () if separate_tags else tags:
                    self._tag_commands(pipe, key, tag, keep)
                if self.wait_replicas:
                    pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
                results = await pipe.execute()
            return not self.wait_replicas or int(results[-1]) >= self.wait_replicas

        try:
            confirmed = await self._redis_call("set", write)
        except CacheUnavailable:
            self._local.set(key, entry, ttl=keep, tags=tags)
            return False
        except CacheFull:
            if self.raise_when_full:
                raise
            self._local.set(key, entry, ttl=keep, tags=tags)
            return False
        if not confirmed:
            self.metrics.error("wait")
            log.warning("write of %s not confirmed by %d replica(s)", key, self.wait_replicas)
        return confirmed

    async def transform(
        self,
        key: str,
        change: Callable[[Any | None], Any | None],
        *,
        ttl: float | None = None,
        attempts: int = 50,
    ) -> Any | None:
        """Atomically replace the value stored in Redis under `key` by `change(value)` (None:
        leave it), with optimistic locking (WATCH/MULTI), so concurrent writers in any process
        never both apply a change judged on the same old value. Redis only, never the local
        fallback: raises CacheUnavailable when Redis cannot be reached. Returns the new value,
        or None when `change` left it."""
        redis = self.redis
        if redis is None:
            raise CacheUnavailable("transform")
        name = self.value_key(key)
        ttl = ttl or self.default_ttl
        for _ in range(attempts):
            try:
                async with redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(name)
                    raw = await pipe.get(name)
                    entry = decode_entry(raw) if isinstance(raw, bytes) else None
                    new = change(entry.value if entry is not None else None)
                    if new is None:
                        return None
                    fresh = CacheEntry(value=new, fresh_until=self._clock() + ttl)
                    keep = max(1, int((ttl + self.stale_seconds) * 1000))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(name, encode_entry(fresh), px=keep)
                    await pipe.execute()
                if self.wait_replicas:
                    confirmed = await redis.execute_command(  # type: ignore[no-untyped-call]
                        "WAIT", self.wait_replicas, self.wait_timeout_ms
                    )
                    if int(confirmed) < self.wait_replicas:
                        self.metrics.error("wait")
                        log.warning("write of %s not confirmed by replicas", key)
                return new
            except redis_errors.WatchError:
                # Another writer changed it in between: judge again, after a jitter that
                # keeps a few contending writers from colliding in lockstep.
                await asyncio.sleep(random.uniform(0, 0.01))
            except redis_errors.OutOfMemoryError as exc:
                raise CacheFull("transform") from exc
            except REDIS_ERRORS as exc:
                raise CacheUnavailable("transform") from exc
        raise CacheUnavailable("transform: too much contention")

    def _tag_commands(self, pipe: Any, key: str, tag: str, keep: float) -> None:
        # Tag sets expire too (volatile-lru never evicts keys without a TTL);
        # NX sets a first TTL, GT only ever extends it.
        pipe.sadd(self.tag_key(tag), self.value_key(key))
        pipe.expire(self.tag_key(tag), int(keep) + 1, nx=True)
        pipe.expire(self.tag_key(tag), int(keep) + 1, gt=True)

    async def _add_tags(self, key: str, tags: tuple[str, ...], keep: float) -> bool:
        """Record `key` in its tag sets in `tag_redis` (no breaker: that Redis has its own
        users; a failure only keeps the entry local)."""
        assert self.tag_redis is not None
        try:
            async with self.tag_redis.pipeline(transaction=False) as pipe:
                for tag in tags:
                    self._tag_commands(pipe, key, tag, keep)
                await pipe.execute()
        except (redis_errors.RedisError, OSError) as exc:
            self.metrics.error("tag")
            log.warning("cache tags %s not recorded (%s): entry not cached", tags, exc)
            return False
        return True

    async def delete(self, key: str) -> None:
        self._local.delete(key)
        try:
            await self._redis_call("delete", lambda r: r.delete(self.value_key(key)))
        except CacheUnavailable:
            log.warning("cache delete of %s not applied to Redis (unavailable)", key)

    async def invalidate_tags(self, *tags: str) -> int:
        """Delete every entry carrying one of `tags`; returns how many were removed."""
        removed = self._local.invalidate_tags(tags)

        tag_store = self.tag_redis

        async def drop(r: Redis) -> int:
            sets = tag_store or r
            count = 0
            for tag in tags:
                members = await sets.smembers(self.tag_key(tag))
                if members:
                    count += int(await r.delete(*members))
                await sets.delete(self.tag_key(tag))
            return count

        try:
            removed += await self._redis_call("invalidate", drop)
        except CacheUnavailable:
            log.warning("tag invalidation %s not applied to Redis (unavailable)", tags)
        return removed

    async def ping(self) -> bool:
        """Health probe, outside the breaker and retries: is Redis answering right now?"""
        if self.redis is None:
            return False
        try:
            return bool(await self.redis.ping())
        except REDIS_ERRORS:
            return False

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self.redis is not None:
            await self.redis.aclose()

    # -- internals --------------------------------------------------------------------------

    async def _redis_call(self, operation: str, call: Callable[[Redis], Awaitable[T]]) -> T:
        redis = self.redis
        if redis is None or not self.breaker.allow():
            raise CacheUnavailable(operation)
        try:
            # First attempt bare: building tenacity's retry state costs more than a local
            # GET, and almost every call succeeds at once. Only a failure pays for retries.
            try:
                result = await call(redis)
            except REDIS_ERRORS:
                if self.retry_attempts <= 1:
                    raise
                result = await self._retry(call, redis)
        except REDIS_ERRORS as exc:
            self.breaker.record_failure()
            self.metrics.error(operation)
            log.warning("redis %s failed: %s", operation, exc)
            raise CacheUnavailable(operation) from exc
        except redis_errors.OutOfMemoryError as exc:
            self.breaker.record_success()  # it answered: up, but full
            self.metrics.error(f"{operation}_full")
            log.warning("redis %s refused, maxmemory reached: %s", operation, exc)
            raise CacheFull(operation) from exc
        self.breaker.record_success()
        return result

    async def _retry(self, call: Callable[[Redis], Awaitable[T]], redis: Redis) -> T:
        """The remaining `retry_attempts - 1` tries, with a short exponential backoff."""
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.retry_attempts - 1),
            wait=wait_exponential(multiplier=0.01, max=0.1),
            retry=retry_if_exception_type(REDIS_ERRORS),
            reraise=True,
        ):
            with attempt:
                return await call(redis)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _on_breaker_change(self, old: BreakerState, new: BreakerState) -> None:
        self.metrics.breaker.set(new.value)
        log.warning("cache breaker %s -> %s", old.name.lower(), new.name.lower())
        if new is BreakerState.CLOSED:
            # Entries kept locally during the outage may have been invalidated elsewhere.
            self._local.clear()

    def _start(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        store: Callable[[T], bool] | None,
    ) -> asyncio.Task[T]:
        async def run() -> T:
            value = await compute()
            if store is not None and store(value):
                await self.set(key, value, ttl=ttl, tags=tags)
            return value

        task = asyncio.create_task(run())
        self._inflight[key] = task

        def done(t: asyncio.Task[T]) -> None:
            if self._inflight.get(key) is t:
                del self._inflight[key]
            if not t.cancelled() and t.exception() is not None:  # also marks it retrieved
                log.debug("cache compute for %s failed: %r", key, t.exception())

        task.add_done_callback(done)
        return task

    async def _single_flight(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        store: Callable[[T], bool] | None,
    ) -> T:
        task: asyncio.Task[T] | None = self._inflight.get(key)
        if task is None:
            task = self._start(key, compute, ttl, tags, store=store)
        # shield: one caller going away (client disconnect) must not cancel the others' work.
        return await asyncio.shield(task)

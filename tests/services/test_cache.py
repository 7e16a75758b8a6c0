"""The shared Redis cache against a real redis-server, plus its breaker and LRU."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry

from indexforge_services.common.breaker import BreakerState, CircuitBreaker
from indexforge_services.common.cache import (
    Cache,
    CacheEntry,
    CacheMetrics,
    CacheUnavailable,
    decode_entry,
    encode_entry,
    redis_client,
)
from indexforge_services.common.lru import BoundedLRU

from .conftest import RedisProcess, free_port


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Counted:
    """A compute function that counts calls and returns call-numbered values."""

    def __init__(self, value: object = "v", delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.value if self.calls == 1 else f"{self.value}-{self.calls}"


def make_cache(url: str | None, *, clock: Clock | None = None, **kw: object) -> Cache:
    registry = CollectorRegistry()
    options: dict[str, object] = {
        "namespace": f"t-{uuid.uuid4().hex[:8]}",
        "default_ttl": 60.0,
        "stale_seconds": 30.0,
        "failure_threshold": 2,
        "reset_seconds": 0.3,
        "retry_attempts": 2,
    }
    options.update(kw)
    if clock is not None:
        options["clock"] = clock
    client = redis_client(url, socket_timeout=0.3) if url else None
    return Cache(client, metrics=CacheMetrics(registry, "test"), **options)  # type: ignore[arg-type]


def sample(cache: Cache, name: str, **labels: str) -> float | None:
    return cache.metrics.registry.get_sample_value(name, {"cache": "test", **labels})


@pytest.fixture
async def cache(redis_server: RedisProcess) -> AsyncIterator[Cache]:
    c = make_cache(redis_server.url)
    yield c
    await c.close()


async def test_miss_then_hit_computes_once(cache: Cache) -> None:
    compute = Counted({"vector": [0.5, 0.25], "raw": b"\x00\x01", "n": 3})
    first = await cache.get_or_compute("k", compute)
    second = await cache.get_or_compute("k", compute)
    assert first == second == {"vector": [0.5, 0.25], "raw": b"\x00\x01", "n": 3}
    assert compute.calls == 1
    assert (cache.metrics.hits, cache.metrics.lookups) == (1, 2)


async def test_every_key_gets_a_ttl(cache: Cache, redis_server: RedisProcess) -> None:
    await cache.set("k", "v", ttl=10, tags=["group"])
    raw = redis.Redis.from_url(redis_server.url)
    try:
        assert 0 < raw.pttl(cache.value_key("k")) <= 40_000  # ttl + stale window
        assert 0 < raw.ttl(cache.tag_key("group")) <= 41  # tag sets are volatile too
    finally:
        raw.close()


async def test_stale_entry_is_served_then_refreshed(redis_server: RedisProcess) -> None:
    clock = Clock()
    cache = make_cache(redis_server.url, clock=clock)
    try:
        compute = Counted("old")
        assert await cache.get_or_compute("k", compute, ttl=10) == "old"
        clock.now += 11  # past fresh_until, inside the stale window
        assert await cache.get_or_compute("k", compute, ttl=10) == "old"  # no waiting
        for _ in range(50):  # the background refresh lands shortly
            await asyncio.sleep(0.02)
            entry = await cache.get_entry("k")
            if entry is not None and entry.value == "old-2":
                break
        assert compute.calls == 2
        assert await cache.get_or_compute("k", compute, ttl=10) == "old-2"
    finally:
        await cache.close()


async def test_single_flight_per_key(cache: Cache) -> None:
    compute = Counted("shared", delay=0.1)
    results = await asyncio.gather(*(cache.get_or_compute("hot", compute) for _ in range(20)))
    assert results == ["shared"] * 20
    assert compute.calls == 1


async def test_a_cancelled_caller_does_not_cancel_the_others(cache: Cache) -> None:
    compute = Counted("x", delay=0.2)
    first = asyncio.create_task(cache.get_or_compute("k", compute))
    second = asyncio.create_task(cache.get_or_compute("k", compute))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second == "x"
    assert compute.calls == 1


async def test_tags_invalidate_grouped_keys(cache: Cache) -> None:
    await cache.set("a", 1, tags=["doc:1"])
    await cache.set("b", 2, tags=["doc:1", "doc:2"])
    await cache.set("c", 3, tags=["doc:2"])
    assert await cache.invalidate_tags("doc:1") == 2
    assert await cache.get_entry("a") is None and await cache.get_entry("b") is None
    entry = await cache.get_entry("c")
    assert entry is not None and entry.value == 3


async def test_garbage_in_redis_reads_as_miss(cache: Cache, redis_server: RedisProcess) -> None:
    raw = redis.Redis.from_url(redis_server.url)
    try:
        raw.set(cache.value_key("k"), b"\xc1 not msgpack", ex=60)
    finally:
        raw.close()
    assert await cache.get_or_compute("k", Counted("fresh")) == "fresh"


def test_entry_codec_round_trip_and_rejects_other_shapes() -> None:
    entry = CacheEntry(value={"a": [1, 2.5, b"\x00"]}, fresh_until=12.5)
    assert decode_entry(encode_entry(entry)) == entry
    assert decode_entry(b"\x93\x02\x00\x00") is None  # another format version
    assert decode_entry(b"") is None


async def test_without_redis_url_nothing_is_cached() -> None:
    cache = make_cache(None)
    compute = Counted("v")
    await cache.get_or_compute("k", compute)
    await cache.get_or_compute("k", compute)
    assert compute.calls == 2 and not cache.enabled
    await cache.close()


async def test_dead_redis_computes_through_and_opens_the_breaker() -> None:
    with socket.socket() as probe:  # nothing listens here
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = make_cache(f"redis://127.0.0.1:{port}/0", failure_threshold=2, reset_seconds=60)
    try:
        compute = Counted("v")
        assert await cache.get_or_compute("k", compute) == "v"  # GET fails, SET fails
        assert cache.breaker.state is BreakerState.OPEN
        # While open, the local LRU answers and Redis is not touched at all.
        assert await cache.get_or_compute("k", compute) == "v"
        assert compute.calls == 1
        assert sample(cache, "cache_breaker_state") == BreakerState.OPEN.value
        assert sample(cache, "cache_errors_total", operation="get") == 1
        assert sample(cache, "cache_requests_total", result="miss") == 1
        assert sample(cache, "cache_requests_total", result="hit") == 1
        assert await cache.ping() is False
    finally:
        await cache.close()


async def test_breaker_recovers_when_redis_returns(redis_binary: str, workdir: Path) -> None:
    server = RedisProcess(redis_binary, free_port(), workdir)
    cache = make_cache(server.url, failure_threshold=1, reset_seconds=0.2)
    try:
        await cache.get_or_compute("k", Counted("down"))
        assert cache.breaker.state is BreakerState.OPEN
        server.start()
        await asyncio.sleep(0.25)
        assert await cache.get_or_compute("k", Counted("up")) == "up"  # probe succeeded
        assert cache.breaker.state is BreakerState.CLOSED
        entry = await cache.get_entry("k")
        assert entry is not None and entry.value == "up"
    finally:
        await cache.close()
        server.stop()


def test_breaker_transitions_with_a_fake_clock() -> None:
    clock = Clock(0.0)
    changes: list[tuple[BreakerState, BreakerState]] = []
    breaker = CircuitBreaker(
        failure_threshold=2,
        reset_seconds=5,
        clock=clock,
        on_change=lambda a, b: changes.append((a, b)),
    )
    breaker.record_failure()
    assert breaker.allow() and breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now = 5.0
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # one probe at a time
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now = 10.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert [b for _, b in changes] == [
        BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN,
        BreakerState.HALF_OPEN, BreakerState.CLOSED,
    ]  # fmt: skip


def test_breaker_lets_a_new_probe_through_if_one_never_reported() -> None:
    clock = Clock(0.0)
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=5, clock=clock)
    breaker.record_failure()
    clock.now = 5.0
    assert breaker.allow()
    clock.now = 7.0
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()


def test_lru_is_bounded_expires_and_drops_tags() -> None:
    clock = Clock(0.0)
    lru: BoundedLRU[int] = BoundedLRU(2, clock=clock)
    lru.set("a", 1, ttl=10, tags=["x"])
    lru.set("b", 2, ttl=10)
    assert lru.get("a") == 1  # a is now most recent
    lru.set("c", 3, ttl=1, tags=["x"])
    assert lru.get("b") is None and len(lru) == 2  # b was least recently used
    clock.now = 2.0
    assert lru.get("c") is None  # expired
    assert lru.invalidate_tags(["x"]) == 1 and lru.get("a") is None


async def test_two_named_caches_share_one_registry(redis_server: RedisProcess) -> None:
    registry = CollectorRegistry()
    caches = [
        Cache(redis_client(redis_server.url, socket_timeout=0.3),
              metrics=CacheMetrics(registry, name), namespace=f"{name}-{uuid.uuid4().hex[:6]}")
        for name in ("search", "documents")
    ]  # fmt: skip
    try:
        await caches[0].get_or_compute("k", Counted("a"))
        await caches[0].get_or_compute("k", Counted("a"))
        await caches[1].get_or_compute("k", Counted("b"))
        get = registry.get_sample_value
        assert get("cache_requests_total", {"cache": "search", "result": "hit"}) == 1
        assert get("cache_requests_total", {"cache": "documents", "result": "miss"}) == 1
        assert get("cache_hit_ratio", {"cache": "search"}) == 0.5
    finally:
        for cache in caches:
            await cache.close()


async def test_transform_never_applies_two_changes_judged_on_one_value(
    redis_server: RedisProcess,
) -> None:
    """Two clients (as two worker processes) add to one value concurrently: with WATCH/MULTI
    no increment is lost; a change returning None leaves the value alone."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    first, second = (make_cache(redis_server.url, namespace=namespace) for _ in range(2))

    def add_one(value: Any) -> Any:
        return (value or 0) + 1

    async def add_many(cache: Cache, n: int) -> None:
        for _ in range(n):
            await cache.transform("counter", add_one)
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(add_many(c, 25) for c in (first, second, first, second)))
        assert (await first.get_entry("counter")).value == 100  # type: ignore[union-attr]
        assert await second.transform("counter", lambda value: None) is None
        assert (await second.get_entry("counter")).value == 100  # type: ignore[union-attr]
    finally:
        await first.close()
        await second.close()


async def test_transform_refuses_to_fall_back_to_this_process() -> None:
    with socket.socket() as probe:  # nothing listens here
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = make_cache(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(CacheUnavailable):
            await cache.transform("k", lambda value: 1)
        assert cache._local.get("k") is None  # nothing kept where no other process sees it
    finally:
        await cache.close()

"""The state Redis (`services/api/state.py`) on real redis-servers: a full `noeviction` Redis
is a clear 503, cache tag sets live apart from the evicting cache, and with Sentinel the
API's own client follows a failover after the primary is SIGKILLed."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry

from services.api.app import create_app
from services.api.jobs import JobStore
from services.api.state import parse_sentinels, state_cache, state_redis
from services.common.cache import Cache, CacheFull, CacheMetrics
from services.messaging.payloads import Payload, PayloadStore, PayloadUnavailable
from tests.procs import free_port
from tests.services.conftest import (
    RedisProcess,
    ServerThread,
    api_settings,
    start_redis,
)
from tests.services.redis_sentinel import ReplicatedRedis, sentinel_argv, start_replicated

PASSWORD = "state-secret"
FAILOVER_BUDGET_SECONDS = 30.0
log = logging.getLogger(__name__)


def fill(server: RedisProcess) -> None:
    """Make the noeviction Redis full: a 4 MB value, then maxmemory 2 MB above what it used
    before (margins of megabytes: client buffers coming and going cannot tip it)."""
    c = redis.Redis(host="127.0.0.1", port=server.port, password=server.password)
    try:
        used = int(c.info("memory")["used_memory"])
        c.set("filler", b"x" * 4 * 1024 * 1024)
        c.config_set("maxmemory", used + 2 * 1024 * 1024)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            c.set("probe", b"x")
    finally:
        c.close()


def free(server: RedisProcess) -> None:
    c = redis.Redis(host="127.0.0.1", port=server.port, password=server.password)
    try:
        c.delete("filler")
    finally:
        c.close()


@pytest.fixture
def full_state(redis_binary: str, workdir: Path) -> Iterator[RedisProcess]:
    server = start_redis(
        redis_binary,
        workdir,
        password=PASSWORD,
        extra=["--maxmemory-policy", "noeviction"],
    )
    try:
        fill(server)
        yield server
    finally:
        server.stop()


def csv_upload(client: httpx.Client) -> httpx.Response:
    body = f"name,note\nwidget,{uuid.uuid4().hex}\n".encode()
    return client.post("/api/v1/documents", files={"file": ("rows.csv", body, "text/csv")})


def test_full_state_redis_refuses_uploads_with_503(full_state: RedisProcess) -> None:
    # Weaviate is a closed port: the job record is written before anything reaches it.
    settings = api_settings(
        weaviate_url=f"http://127.0.0.1:{free_port()}",
        state_redis_url=full_state.url,
        state_redis_password=PASSWORD,
    )
    with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url) as c:
        refused = csv_upload(c)
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "job_store_full"
        assert refused.headers["Retry-After"] == "30"
        free(full_state)  # room again: the same upload is accepted, no restart
        accepted = csv_upload(c)
        assert accepted.status_code == 202, accepted.text
        job = c.get(accepted.json()["status_url"])
        assert job.status_code == 200


async def test_job_store_and_payloads_on_a_full_redis(full_state: RedisProcess) -> None:
    settings = api_settings(state_redis_url=full_state.url, state_redis_password=PASSWORD)
    client = state_redis(settings)
    assert client is not None
    jobs = JobStore(state_cache(settings, client, CollectorRegistry()), ttl=60)
    payloads = PayloadStore(client, namespace="t", ttl=60)
    try:
        with pytest.raises(CacheFull):
            await jobs.create("j1", document_id="d1")
        with pytest.raises(PayloadUnavailable):
            await payloads.put("j1", Payload("csv", "a.csv", "0" * 64, 10, []))
        assert await jobs.get("j1") is None  # nothing half-written
    finally:
        await client.aclose()


async def test_cache_tags_live_in_the_state_redis(
    redis_binary: str, workdir: Path, redis_server: RedisProcess
) -> None:
    state = start_redis(redis_binary, workdir, extra=["--maxmemory-policy", "noeviction"])
    cache_r = redis.asyncio.Redis.from_url(redis_server.url)
    state_r = redis.asyncio.Redis.from_url(state.url)
    cache = Cache(
        cache_r,
        metrics=CacheMetrics(CollectorRegistry(), "t"),
        namespace=f"t{uuid.uuid4().hex[:6]}",
        tag_redis=state_r,
    )
    try:
        assert await cache.set("q1", [1], ttl=60, tags=["search"])
        assert await state_r.smembers(cache.tag_key("search")) == {cache.value_key("q1").encode()}
        assert not await cache_r.exists(cache.tag_key("search"))
        assert await cache.invalidate_tags("search") == 1
        assert not await cache_r.exists(cache.value_key("q1"))
        # State Redis gone: the entry must not reach the cache Redis untagged.
        state.kill()
        assert not await cache.set("q2", [2], ttl=60, tags=["search"])
        assert not await cache_r.exists(cache.value_key("q2"))
        assert (await cache.get_entry("q2")) is None  # a miss: computed again next time
    finally:
        await cache_r.aclose()
        await state_r.aclose()
        state.stop()


def test_sentinel_list_parsing() -> None:
    assert parse_sentinels("a:26379, b:1") == [("a", 26379), ("b", 1)]
    for bad in ("", "a", "a:b", "a:0", ":1"):
        with pytest.raises(ValueError):
            parse_sentinels(bad)


@pytest.fixture
def replicated(redis_binary: str, workdir: Path) -> Iterator[ReplicatedRedis]:
    if sentinel_argv() is None:
        pytest.skip("redis-sentinel is not on PATH (Debian package redis-sentinel)")
    group = start_replicated(redis_binary, workdir, password=PASSWORD)
    try:
        yield group
    finally:
        group.stop()


async def test_clients_follow_a_sentinel_failover(replicated: ReplicatedRedis) -> None:
    """SIGKILL the primary under a bounded write loop through the API's own state client:
    the sentinels promote a replica, the client reaches it, and every job record whose
    write the replicas confirmed (WAIT 1) is still there."""
    settings = api_settings(
        state_redis_sentinels=replicated.sentinel_list,
        state_redis_password=PASSWORD,
        state_redis_wait_replicas=1,
        state_redis_wait_timeout_ms=200,
        breaker_reset_seconds=0.5,
    )
    client = state_redis(settings)
    assert client is not None
    jobs = JobStore(state_cache(settings, client, CollectorRegistry()), ttl=600)
    confirmed: list[str] = []
    first_port = replicated.master_port()
    assert first_port == replicated.primary.port
    try:
        for i in range(20):  # a healthy group confirms every write
            assert await jobs.cache.set(JobStore.key(f"before-{i}"), {"id": i}, ttl=600)
            confirmed.append(f"before-{i}")
        replicated.primary.kill()
        killed = time.monotonic()
        recovered: float | None = None
        for i in range(2000):  # bounded: ~50 ms per try, stop at the budget
            elapsed = time.monotonic() - killed
            if elapsed > FAILOVER_BUDGET_SECONDS + 10:
                break
            if await jobs.cache.set(JobStore.key(f"after-{i}"), {"id": i}, ttl=600):
                confirmed.append(f"after-{i}")
                if recovered is None:
                    recovered = elapsed
                if len(confirmed) >= 40:
                    break
            await asyncio.sleep(0.05)
        assert recovered is not None, "no confirmed write after the primary was killed"
        log.warning("state Redis failover: first confirmed write %.1f s after SIGKILL", recovered)
        print(f"\nstate Redis failover: first confirmed write {recovered:.1f} s after SIGKILL")
        assert recovered < FAILOVER_BUDGET_SECONDS
        assert replicated.master_port() != first_port
        # Every confirmed record is on the new primary (read there, not from local memory).
        promoted = redis.Redis(host="127.0.0.1", port=replicated.master_port(), password=PASSWORD)
        try:
            keys = [jobs.cache.value_key(JobStore.key(j)) for j in confirmed]
            assert all(promoted.exists(k) for k in keys), "a confirmed job record was lost"
            assert promoted.info("replication")["role"] == "master"
        finally:
            promoted.close()
    finally:
        await jobs.cache.close()

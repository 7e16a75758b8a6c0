"""Redis killed mid-test: the ML service keeps answering, the breaker opens and recovers."""

from __future__ import annotations

import asyncio

import numpy as np

from indexforge_services.common.breaker import BreakerState
from indexforge_services.ml.app import create_app
from indexforge_services.ml.model import Embedder

from .conftest import RedisProcess, metric, ml_settings, running_client


async def test_requests_survive_a_redis_crash_and_the_breaker_recovers(
    embedder: Embedder, private_redis: RedisProcess
) -> None:
    app = create_app(
        ml_settings(
            redis_url=private_redis.url,
            breaker_failure_threshold=2,
            breaker_reset_seconds=0.5,
            redis_socket_timeout_seconds=0.3,
        ),
        encoder=embedder,
    )
    cache = app.state.service.cache

    async def vector(client: object, text: str) -> list[float]:
        response = await client.post("/vectors", json={"text": text})  # type: ignore[attr-defined]
        assert response.status_code == 200, response.text
        return response.json()["vector"]  # type: ignore[no-any-return]

    async with running_client(app) as client:
        before = await vector(client, "cached before the crash")
        assert cache.breaker.state is BreakerState.CLOSED

        private_redis.kill()
        during = [await vector(client, f"computed during the outage {i}") for i in range(3)]
        again = await vector(client, "cached before the crash")  # computed through now
        np.testing.assert_allclose(again, before, atol=1e-6)
        assert cache.breaker.state is BreakerState.OPEN
        assert metric(app, "cache_breaker_state", cache="ml-embeddings") == 2
        assert metric(app, "cache_errors_total", cache="ml-embeddings", operation="get") >= 1
        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "ok" and ready["checks"]["redis"]["ok"] is False

        private_redis.start()  # same port: the service's URL is valid again
        await asyncio.sleep(0.6)  # past breaker_reset_seconds
        after = await vector(client, "computed during the outage 0")
        np.testing.assert_allclose(after, during[0], atol=1e-6)
        assert cache.breaker.state is BreakerState.CLOSED
        assert metric(app, "cache_breaker_state", cache="ml-embeddings") == 0
        # Writes reach Redis again: the next identical request is a Redis hit.
        hits = metric(app, "cache_requests_total", cache="ml-embeddings", result="hit")
        await vector(client, "written after recovery")
        await vector(client, "written after recovery")
        assert metric(app, "cache_requests_total", cache="ml-embeddings", result="hit") == hits + 1

"""Micro-batching: concurrent requests share forward passes and get the right vectors."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import pytest

from indexforge_services.ml.app import create_app
from indexforge_services.ml.batching import MicroBatcher
from indexforge_services.ml.model import Embedder, Vectors

from .conftest import ServerThread, metric, ml_settings, running_client


async def test_64_concurrent_requests_match_sequential_in_fewer_passes(
    ml_server: ServerThread, embedder: Embedder
) -> None:
    app = ml_server.app
    texts = [f"concurrency sentence {i} about topic {uuid.uuid4().hex[:6]}" for i in range(64)]
    sequential = [embedder.encode([t])[0] for t in texts]  # one forward pass each
    passes_before = metric(app, "ml_batch_size_count", model=embedder.name)

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=ml_server.url, limits=limits, timeout=120) as client:
        responses = await asyncio.gather(
            *(client.post("/vectors", json={"text": t}) for t in texts)
        )
    assert all(r.status_code == 200 for r in responses)
    concurrent = [r.json()["vector"] for r in responses]
    np.testing.assert_allclose(concurrent, sequential, atol=1e-5)

    passes = metric(app, "ml_batch_size_count", model=embedder.name) - passes_before
    assert 1 <= passes < 64 / 2, f"{passes} forward passes for 64 requests"


async def test_large_request_is_split_into_batches_of_at_most_max() -> None:
    calls: list[int] = []

    def encode(texts: Sequence[str]) -> Vectors:
        calls.append(len(texts))
        return np.arange(len(texts), dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)

    batcher = MicroBatcher(encode, max_batch=8, max_wait=0.001)
    batcher.start()
    try:
        out = await batcher.embed([str(i) for i in range(20)])
    finally:
        await batcher.stop()
    assert calls == [8, 8, 4]
    # Answers go back to the right caller: row i of its batch.
    assert [int(v[0]) for v in out] == [*range(8), *range(8), *range(4)]


async def test_a_failed_forward_pass_fails_every_caller_in_it() -> None:
    def encode(texts: Sequence[str]) -> Vectors:
        raise RuntimeError("device lost")

    batcher = MicroBatcher(encode, max_batch=8, max_wait=0.02)
    batcher.start()
    try:
        results = await asyncio.gather(
            batcher.embed(["a"]), batcher.embed(["b"]), return_exceptions=True
        )
        assert [str(r) for r in results] == ["device lost", "device lost"]
        assert batcher.forward_passes == 1
    finally:
        await batcher.stop()


class SlowEncoder:
    """Blocks its (inference) thread like a long forward pass would."""

    name = "slow-fake"
    model_id = "slow-fake@0"
    device = "cpu"
    dim = 4
    max_seq_length = 16

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.started.set()
        time.sleep(self.seconds)
        out = np.ones((len(texts), self.dim), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def meta(self) -> dict[str, Any]:
        return {"model": {}}


@pytest.mark.timeout(60)
async def test_health_stays_responsive_during_inference() -> None:
    encoder = SlowEncoder(seconds=1.0)
    app = create_app(ml_settings(), encoder=encoder)
    async with running_client(app) as client:
        inference = asyncio.create_task(client.post("/vectors", json={"text": "slow"}))
        await asyncio.to_thread(encoder.started.wait, 5)
        start = time.perf_counter()
        live = await client.get("/.well-known/live")
        ready = await client.get("/readyz")
        elapsed = time.perf_counter() - start
        assert live.status_code == 204 and ready.status_code == 200
        assert elapsed < 0.5, f"health took {elapsed:.2f}s while a forward pass ran"
        assert not inference.done()
        assert (await inference).status_code == 200

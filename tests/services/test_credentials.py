"""Redis and Weaviate require credentials, as the operator deploys them; the services present
them. Real redis-server with `requirepass`, real weaviate-server with API-key auth.

Without the right credential nothing crashes and nothing leaks: Redis counts as down (the
ML service computes through, readiness and metrics say so), Weaviate makes the API unready
and refuse uploads with a clean 503; neither secret shows in a log line or a response.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from indexforge_services.ml.app import create_app as create_ml_app
from indexforge_services.ml.model import Embedder
from tests.stack.weaviate import WeaviateProcess

from .conftest import (
    ApiFactory,
    RedisProcess,
    ServerThread,
    metric,
    ml_settings,
    running_client,
    start_redis,
    wait_job,
)

REDIS_PASSWORD = f"redis-pw-{uuid.uuid4().hex}"
WEAVIATE_KEY = f"weaviate-key-{uuid.uuid4().hex}"


@pytest.fixture
def locked_redis(redis_binary: str, workdir: Path) -> Iterator[RedisProcess]:
    server = start_redis(redis_binary, workdir, password=REDIS_PASSWORD)
    yield server
    server.stop()


@pytest.mark.parametrize("password", [None, "not-the-password-42"], ids=["none", "wrong"])
async def test_without_the_redis_password_the_cache_is_visibly_down_and_requests_work(
    embedder: Embedder,
    locked_redis: RedisProcess,
    password: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = ml_settings(redis_url=locked_redis.url, redis_password=password)
    app = create_ml_app(settings, encoder=embedder)
    async with running_client(app) as client:
        for _ in range(2):
            response = await client.post("/vectors", json={"text": "a locked cache"})
            assert response.status_code == 200, response.text
        ready = await client.get("/readyz")
        assert ready.status_code == 200  # the cache is optional: slower, not down
        assert ready.json()["checks"]["redis"] == {"ok": False, "required": False}
    assert metric(app, "cache_errors_total", cache="ml-embeddings", operation="get") >= 1
    assert metric(app, "cache_breaker_state", cache="ml-embeddings") == 2  # open
    admin = redis.Redis(port=locked_redis.port, password=REDIS_PASSWORD)
    assert admin.dbsize() == 0  # nothing got in
    admin.close()
    assert "redis get failed" in caplog.text  # the failure is in the log ...
    assert REDIS_PASSWORD not in caplog.text  # ... and no password is
    assert "not-the-password-42" not in caplog.text


async def test_with_the_redis_password_from_its_file_the_cache_hits(
    embedder: Embedder, locked_redis: RedisProcess, tmp_path: Path
) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text(f"{REDIS_PASSWORD}\n")  # a Secret volume file, newline and all
    settings = ml_settings(redis_url=locked_redis.url, redis_password_file=secret)
    app = create_ml_app(settings, encoder=embedder)
    async with running_client(app) as client:
        first = await client.post("/vectors", json={"text": "an unlocked cache"})
        second = await client.post("/vectors", json={"text": "an unlocked cache"})
        assert first.status_code == second.status_code == 200
        assert first.json()["vector"] == second.json()["vector"]
        ready = (await client.get("/readyz")).json()
        assert ready["checks"]["redis"]["ok"] is True
    assert metric(app, "cache_requests_total", cache="ml-embeddings", result="hit") == 1
    assert metric(app, "cache_errors_total", cache="ml-embeddings", operation="get") == 0


@pytest.fixture
def keyed_weaviate(ml_server: ServerThread, tmp_path: Path) -> Iterator[WeaviateProcess]:
    server = WeaviateProcess(tmp_path / "weaviate", ml_server.url, api_key=WEAVIATE_KEY)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("key", [None, "wrong-key-0123456789"], ids=["none", "wrong"])
def test_without_the_weaviate_key_the_api_is_unready_and_refuses_uploads_cleanly(
    make_api: ApiFactory,
    keyed_weaviate: WeaviateProcess,
    key: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wiring = {
        "weaviate_url": keyed_weaviate.url,
        "weaviate_grpc_port": keyed_weaviate.ports.grpc,
        "weaviate_api_key": key,
    }
    with make_api(**wiring) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["weaviate"] == {"ok": False, "required": True}

        upload = c.post("/api/v1/documents", json={"text": "Nobody may store this."})
        assert upload.status_code == 503, upload.text
        assert upload.headers["Retry-After"] == "30"
        assert upload.json()["code"] == "search_unavailable"
        assert upload.json()["correlation_id"] == upload.headers["X-Request-ID"]
        search = c.get("/api/v1/search", params={"q": "anything"})
        assert search.status_code == 503 and search.json()["code"] == "search_unavailable"
        for response in (upload, search):
            # Neither Weaviate's address nor its client's error reaches the client.
            assert str(keyed_weaviate.ports.http) not in response.text
            assert "401" not in response.text and "api key" not in response.text.lower()
    assert "Weaviate refused the API key" in caplog.text
    assert WEAVIATE_KEY not in caplog.text and "wrong-key-0123456789" not in caplog.text


def test_with_the_weaviate_key_from_its_file_the_api_indexes_and_searches(
    make_api: ApiFactory, keyed_weaviate: WeaviateProcess, tmp_path: Path
) -> None:
    secret = tmp_path / "weaviate-api-key"
    secret.write_text(WEAVIATE_KEY)
    wiring = {
        "weaviate_url": keyed_weaviate.url,
        "weaviate_grpc_port": keyed_weaviate.ports.grpc,
        "weaviate_api_key_file": secret,
    }
    with make_api(**wiring) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get("/readyz").status_code == 200
        upload = c.post("/api/v1/documents", json={"text": "Honey bees pollinate orchards."})
        assert upload.status_code == 202, upload.text
        job = wait_job(c, upload.json()["job_id"])
        assert job["status"] == "completed", job
        hits = c.get("/api/v1/search", params={"q": "insects and fruit trees"}).json()
        assert hits["results"][0]["document_id"] == job["document_id"]

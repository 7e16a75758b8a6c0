"""The ML service over HTTP: Weaviate's protocol, our API, health, metrics, ids, cache."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import numpy as np
import redis

from indexforge_services.ml.embedding import cache_key
from indexforge_services.ml.model import Embedder

from .conftest import ServerThread, metric


def weaviate_body(text: str, task: str = "passage") -> bytes:
    """Byte-for-byte what Weaviate's Go client posts: its whole request struct, no
    Content-Type header, zero values included."""
    return json.dumps(
        {
            "text": text,
            "dims": 0,
            "vector": None,
            "error": "",
            "config": {"pooling_strategy": "masked_mean", "task_type": task},
        }
    ).encode()


def test_vectors_contract_matches_weaviate_client(client: httpx.Client) -> None:
    text = f"Weaviate contract {uuid.uuid4()}"
    response = client.post("/vectors", content=weaviate_body(text))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == text
    assert body["dim"] == body["dims"] == 384  # reference servers say dim, Go client reads dims
    assert len(body["vector"]) == 384
    assert all(isinstance(x, float) for x in body["vector"])
    assert abs(np.linalg.norm(body["vector"]) - 1) < 1e-5


def test_vectors_query_task_and_trailing_slash(client: httpx.Client) -> None:
    response = client.post("/vectors/", content=weaviate_body("a query", task="query"))
    assert response.status_code == 200
    assert len(response.json()["vector"]) == 384


def test_vectors_batch_format(client: httpx.Client, embedder: Embedder) -> None:
    texts = ["first text", "second text"]
    response = client.post("/vectors", json={"texts": texts, "config": {"task_type": "passage"}})
    assert response.status_code == 200
    body = response.json()
    assert body["dims"] == 384 and len(body["vectors"]) == 2
    np.testing.assert_allclose(body["vectors"], embedder.encode(texts), atol=1e-5)


def test_meta_returns_model_config_map(client: httpx.Client) -> None:
    meta = client.get("/meta").json()
    assert meta["model"]["hidden_size"] == 384  # Weaviate stores this map as module meta
    assert meta["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["device"] == "cpu" and meta["pooling"] == "masked_mean"


def test_well_known_and_health_endpoints(client: httpx.Client) -> None:
    assert client.get("/.well-known/live").status_code == 204
    assert client.get("/.well-known/ready").status_code == 204
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "redis": {"ok": True, "required": False},
        "model": {"ok": True, "required": True},
    }


def test_embeddings_endpoint_keeps_order(client: httpx.Client, embedder: Embedder) -> None:
    texts = ["zebra", "apple pie recipe", "quantum chromodynamics"]
    body = client.post("/api/v1/ml/embeddings", json={"texts": texts}).json()
    assert body["model"] == "sentence-transformers/all-MiniLM-L6-v2" and body["dim"] == 384
    np.testing.assert_allclose(body["embeddings"], embedder.encode(texts), atol=1e-5)


def test_similarity_ranks_close_pairs_higher(client: httpx.Client) -> None:
    pairs = [
        {"a": "How do I reset my password?", "b": "I forgot my password, how can I change it?"},
        {"a": "How do I reset my password?", "b": "The weather in Lisbon is sunny today."},
    ]
    response = client.post("/api/v1/ml/similarity", json={"pairs": pairs})
    assert response.status_code == 200
    close, unrelated = response.json()["scores"]
    assert close > 0.6 and unrelated < 0.2 and close > unrelated


def test_cached_answer_equals_fresh_and_is_volatile(
    client: httpx.Client, ml_server: ServerThread, redis_client: redis.Redis
) -> None:
    app = ml_server.app
    text = f"cache me {uuid.uuid4()}"
    hits_before = metric(app, "cache_requests_total", cache="ml-embeddings", result="hit")
    fresh = client.post("/vectors", json={"text": text}).json()["vector"]
    # Whitespace variants normalise to the same key.
    cached = client.post("/vectors", json={"text": f"  {text}\n"}).json()["vector"]
    assert cached == fresh
    assert metric(app, "cache_requests_total", cache="ml-embeddings", result="hit") == (
        hits_before + 1
    )
    cache = app.state.service.cache
    model_id = app.state.ml_service.runtime.encoder.model_id
    key = cache.value_key(cache_key(model_id, text))
    ttl = redis_client.pttl(key)
    assert 3_500_000 < ttl <= (3600 + 60) * 1000  # 1 h + stale window, never persistent
    assert metric(app, "cache_hit_ratio", cache="ml-embeddings") > 0


def test_correlation_id_from_kong_then_client_then_generated(client: httpx.Client) -> None:
    kong = client.get("/healthz", headers={"Kong-Request-ID": "kong-1", "X-Request-ID": "x-1"})
    assert kong.headers["x-request-id"] == "kong-1"
    assert kong.headers["kong-request-id"] == "kong-1"
    direct = client.get("/healthz", headers={"X-Request-ID": "x-2"})
    assert direct.headers["x-request-id"] == "x-2"
    generated = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    bad = client.post("/vectors", json={"text": ""}, headers={"X-Request-ID": "err-3"})
    assert bad.json()["correlation_id"] == "err-3"


def test_metrics_endpoint_labels_route_templates(client: httpx.Client) -> None:
    client.get("/meta")
    client.get(f"/no/such/{uuid.uuid4()}")
    text = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/meta",status="200"}' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "http_request_duration_seconds_bucket" in text
    assert re.search(
        r'indexforge_service_info\{.*model="sentence-transformers/all-MiniLM-L6-v2"', text
    )
    assert 'ml_device_info{device="cpu"' in text
    assert "ml_model_inference_seconds_count" in text and "ml_batch_size_bucket" in text
    assert 'cache_hit_ratio{cache="ml-embeddings"}' in text

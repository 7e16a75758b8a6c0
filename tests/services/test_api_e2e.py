"""End to end on real services: API -> Excel processor -> ML service -> real Weaviate.

Upload an Excel file of products, wait for the job, search semantically, read and delete the
document, and check that the cached search answer went away with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from indexforge_services.api.ranking import SearchRequest
from indexforge_services.api.routes.search import cache_key
from indexforge_services.api.store import SearchFilters

from .conftest import ApiFactory, RedisProcess, ServerThread, metric, wait_job
from .workbooks import FRIDGE_ROW, PRODUCTS, products_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DRINKS = "something to keep drinks cold"


@pytest.fixture
def api(make_api: ApiFactory) -> Iterator[tuple[ServerThread, httpx.Client]]:
    with make_api() as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield server, client


def search(client: httpx.Client, q: str, **params: Any) -> httpx.Response:
    response = client.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text[:300]
    return response


def ingest(client: httpx.Client, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    accepted = client.post("/api/v1/documents", **kwargs)
    assert accepted.status_code == 202, accepted.text[:300]
    body = accepted.json()
    assert accepted.headers["Location"] == body["status_url"] == f"/api/v1/jobs/{body['job_id']}"
    return body["document_id"], wait_job(client, body["job_id"])


def test_excel_products_end_to_end(
    api: tuple[ServerThread, httpx.Client], app_redis: RedisProcess
) -> None:
    server, client = api
    doc, job = ingest(client, files={"file": ("products.xlsx", products_xlsx(), XLSX)})
    assert job["status"] == "completed", job
    assert (job["kind"], job["records"], job["written"]) == ("xlsx", len(PRODUCTS), len(PRODUCTS))

    first = search(client, DRINKS, limit=3)
    assert first.headers["X-Cache"] == "miss"
    hits = first.json()["results"]
    top = hits[0]
    assert top["fields"]["Name"] == "Compact refrigerator", [h["fields"]["Name"] for h in hits]
    assert (top["document_id"], top["source"], top["kind"]) == (doc, "products.xlsx", "xlsx")
    assert (top["sheet"], top["row"]) == ("Products", FRIDGE_ROW)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]

    second = search(client, DRINKS, limit=3)
    assert second.headers["X-Cache"] == "hit" and second.json()["cached"] is True
    assert second.json()["results"] == hits
    settings = server.app.state.api_service.settings
    request = SearchRequest(
        DRINKS, 3, settings.search_alpha, settings.search_min_score, SearchFilters()
    )
    cached_key = f"{settings.cache_namespace}:v:{cache_key(request)}"
    app_cache = redis.Redis.from_url(app_redis.db_url(0))
    assert app_cache.exists(cached_key)

    document = client.get(f"/api/v1/documents/{doc}").json()
    assert (document["records"], document["kind"], document["source"]) == (
        8,
        "xlsx",
        "products.xlsx",
    )
    assert [r["row"] for r in document["sample"]] == list(range(2, 2 + len(PRODUCTS)))

    deleted = client.delete(f"/api/v1/documents/{doc}")
    assert deleted.status_code == 200 and deleted.json() == {"id": doc, "deleted": len(PRODUCTS)}
    assert not app_cache.exists(cached_key)  # the tagged search answer was invalidated
    after = search(client, DRINKS, limit=3)
    assert after.headers["X-Cache"] == "miss"
    assert all(h["document_id"] != doc for h in after.json()["results"])
    assert client.get(f"/api/v1/documents/{doc}").status_code == 404
    assert client.delete(f"/api/v1/documents/{doc}").status_code == 404
    app_cache.close()

    app = server.app
    assert metric(app, "api_ingest_jobs_total", kind="xlsx", result="completed") == 1
    assert metric(app, "api_ingest_records_total") == len(PRODUCTS)
    assert metric(app, "api_search_requests_total", cache="hit") == 1


def test_text_and_csv_documents_are_searchable_with_filters(
    api: tuple[ServerThread, httpx.Client],
) -> None:
    _, client = api
    text = (
        "The lighthouse keeper climbed the tower every evening to light the lamp.\n\n"
        "Ships passing the rocky coast relied on its beam during storms."
    )
    doc_text, job = ingest(client, json={"text": text, "source": "lighthouse.txt"})
    assert job["status"] == "completed" and job["records"] == 2  # one chunk per paragraph
    csv_data = b"city,country\nKyoto,Japan\nLyon,France\n"
    _, job = ingest(client, files={"file": ("cities.csv", csv_data, "text/csv")})
    assert job["status"] == "completed" and job["records"] == 2

    hit = search(client, "a tower guiding ships at sea", limit=1).json()["results"][0]
    assert hit["document_id"] == doc_text and hit["kind"] == "text"
    french = search(client, "a city in France", kind="csv", limit=1).json()["results"][0]
    assert french["fields"] == {"city": "Lyon", "country": "France"} and french["row"] == 3
    only_text = search(client, "a city in France", document_id=doc_text, min_score=-1).json()
    assert {h["document_id"] for h in only_text["results"]} == {doc_text}
    assert only_text["filters"] == {"document_id": doc_text}
    # The lighthouse text is unrelated to French cities: under the relevance floor, nothing.
    assert search(client, "a city in France", document_id=doc_text).json()["results"] == []


def test_weaviate_vectorizes_through_the_ml_service_when_the_api_does_not(
    make_api: ApiFactory, ml_server: ServerThread
) -> None:
    """Without ML_URL, objects go to Weaviate without vectors; its module calls /vectors."""
    before = metric(
        ml_server.app, "http_requests_total", method="POST", route="/vectors", status="200"
    )
    with make_api(ml_url=None) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        doc, job = ingest(client, json={"text": "Penguins live in the southern hemisphere."})
        assert job["status"] == "completed"
        hit = search(client, "birds of Antarctica", limit=1).json()["results"][0]
        assert hit["document_id"] == doc
    after = metric(
        ml_server.app, "http_requests_total", method="POST", route="/vectors", status="200"
    )
    assert after >= before + 2  # the object and the query, both vectorized by Weaviate


def test_per_consumer_counters_in_redis_and_metrics(
    api: tuple[ServerThread, httpx.Client], app_redis: RedisProcess
) -> None:
    server, client = api
    for _ in range(3):
        response = client.get(
            "/api/v1/search", params={"q": "anything"}, headers={"X-Consumer-Username": "alice"}
        )
        assert response.status_code == 200
    client.get("/api/v1/search", params={"q": "anything"}, headers={"X-Consumer-ID": "bob-42"})
    client.get("/api/v1/search", params={"q": "anything"})  # anonymous
    app = server.app
    assert metric(app, "api_consumer_requests_total", consumer="alice") == 3
    assert metric(app, "api_consumer_requests_total", consumer="bob-42") == 1
    assert metric(app, "api_consumer_window_requests", consumer="alice") == 3
    service = app.state.api_service
    key = service.consumers.window_key("alice")
    r = redis.Redis.from_url(app_redis.db_url(0))
    assert int(r.get(key) or 0) == 3
    assert 3600 < r.ttl(key) <= 3660  # the 1 h window (+ a minute of slack)
    r.close()


def test_completed_upload_invalidates_cached_searches(
    api: tuple[ServerThread, httpx.Client],
) -> None:
    _, client = api
    q = "volcanic eruptions"
    assert search(client, q).json()["results"] == []
    assert search(client, q).headers["X-Cache"] == "hit"
    doc, job = ingest(client, json={"text": "Lava flowed from the erupting volcano for days."})
    assert job["status"] == "completed"
    fresh = search(client, q)
    assert fresh.headers["X-Cache"] == "miss"
    assert fresh.json()["results"][0]["document_id"] == doc

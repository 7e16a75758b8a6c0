"""Duplicates are stored once: per distinct text one object, with every document's rows.

Uploading the same file again is the same document and changes nothing; a document that
shares rows with another adds its references to the existing objects; deleting (or rolling
back) a document removes only its own references.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import weaviate
from weaviate.classes.config import Configure, DataType, Property

from tests.stack.weaviate import WeaviateProcess

from .conftest import ApiFactory, ServerThread, failing_upsert, wait_job
from .recall import ExactIndex

A = b"""name,description
Umbrella,A folding umbrella that keeps you dry when it rains
Electric kettle,Boils water for tea in about a minute
Placeholder,to be confirmed
Placeholder,to be confirmed
Placeholder,to be confirmed
"""
# Shares the umbrella row (different spacing and case) and the placeholder with A.
B = b"""name,description
umbrella,A folding umbrella that keeps you  dry when it rains
Sunscreen,Protects skin from sunburn at the beach
Placeholder,to be confirmed
"""


@pytest.fixture
def api(make_api: ApiFactory) -> Iterator[tuple[ServerThread, httpx.Client]]:
    with (
        make_api(weaviate_batch_size=2) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        yield server, client


def upload(client: httpx.Client, name: str, data: bytes) -> dict[str, Any]:
    accepted = client.post("/api/v1/documents", files={"file": (name, data, "text/csv")})
    assert accepted.status_code == 202, accepted.text[:300]
    job = wait_job(client, accepted.json()["job_id"])
    assert job["document_id"] == accepted.json()["document_id"]
    return job


def stored(server: ServerThread, weaviate: WeaviateProcess) -> dict[str, str]:
    """Object id -> text, read from Weaviate itself."""
    collection = server.app.state.api_service.settings.weaviate_collection
    index = ExactIndex.read(weaviate.url, weaviate.ports.grpc, collection)
    return dict(zip(index.ids, index.texts, strict=True))


def hits(client: httpx.Client, q: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/search", params={"q": q, "min_score": 0.3, **params})
    assert response.status_code == 200, response.text[:300]
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_same_file_twice_is_one_document_and_changes_nothing(
    api: tuple[ServerThread, httpx.Client], weaviate_server: WeaviateProcess
) -> None:
    server, client = api
    first = upload(client, "a.csv", A)
    assert (first["status"], first["records"], first["written"], first["added"]) == (
        "completed", 5, 5, 3,
    )  # fmt: skip
    before = stored(server, weaviate_server)
    assert len(before) == 3
    second = upload(client, "a.csv", A)
    assert second["status"] == "completed" and second["added"] == 0
    assert second["document_id"] == first["document_id"]
    assert stored(server, weaviate_server) == before
    placeholder = hits(client, "placeholder to be confirmed", limit=10)
    assert len(placeholder) == 1  # not once per row, not once per upload
    (ref,) = placeholder[0]["references"]
    assert ref["rows"] == [{"sheet": None, "first": 4, "last": 6}] and ref["records"] == 3
    doc = client.get(f"/api/v1/documents/{first['document_id']}").json()
    assert (doc["records"], doc["source"], len(doc["sample"])) == (5, "a.csv", 3)
    # The same bytes under another name are another document, but no new object.
    renamed = upload(client, "copy-of-a.csv", A)
    assert renamed["document_id"] != first["document_id"] and renamed["added"] == 0
    assert stored(server, weaviate_server).keys() == before.keys()


def test_shared_rows_join_existing_objects_and_delete_removes_only_own_references(
    api: tuple[ServerThread, httpx.Client], weaviate_server: WeaviateProcess
) -> None:
    server, client = api
    a = upload(client, "a.csv", A)
    b = upload(client, "b.csv", B)
    assert b["added"] == 1  # only the sunscreen is new
    assert len(stored(server, weaviate_server)) == 4
    (umbrella,) = [h for h in hits(client, "umbrella for rain") if "umbrella" in h["text"]]
    both = [a["document_id"], b["document_id"]]
    assert [r["document_id"] for r in umbrella["references"]] == both
    only_b = hits(client, "umbrella for rain", document_id=b["document_id"])
    assert only_b[0]["id"] == umbrella["id"] and only_b[0]["document_id"] == b["document_id"]
    assert only_b[0]["source"] == "b.csv" and only_b[0]["row"] == 2
    # One reference has source a.csv, another holds the sunscreen row: not the same one.
    assert hits(client, "sunscreen", source="a.csv") == []

    deleted = client.delete(f"/api/v1/documents/{a['document_id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 5
    left = stored(server, weaviate_server)
    assert sorted(left.values()) == sorted(
        [
            "name: Umbrella; description: A folding umbrella that keeps you dry when it rains",
            "name: Sunscreen; description: Protects skin from sunburn at the beach",
            "name: Placeholder; description: to be confirmed",
        ]
    )  # the kettle was A's alone; the shared rows stay, with B's reference only
    (umbrella,) = [h for h in hits(client, "umbrella for rain") if "umbrella" in h["text"]]
    assert [r["document_id"] for r in umbrella["references"]] == [b["document_id"]]
    assert client.get(f"/api/v1/documents/{a['document_id']}").status_code == 404
    assert client.get(f"/api/v1/documents/{b['document_id']}").json()["records"] == 3
    assert client.delete(f"/api/v1/documents/{b['document_id']}").json()["deleted"] == 3
    assert stored(server, weaviate_server) == {}


def test_a_failed_upload_rolls_back_only_its_own_references(
    api: tuple[ServerThread, httpx.Client], weaviate_server: WeaviateProcess
) -> None:
    server, client = api
    a = upload(client, "a.csv", A)
    before = stored(server, weaviate_server)
    store = server.app.state.api_service.store
    # The 2nd write fails: B's first batch (umbrella + sunscreen) is already written.
    with failing_upsert(store, on_call=2, message="simulated failure of the second batch"):
        failed = upload(client, "b.csv", B)
    assert (failed["status"], failed["reason"]) == ("failed", "weaviate_unavailable"), failed
    assert stored(server, weaviate_server) == before  # sunscreen gone, A's objects intact
    (umbrella,) = [h for h in hits(client, "umbrella for rain") if "umbrella" in h["text"]]
    assert [r["document_id"] for r in umbrella["references"]] == [a["document_id"]]
    assert client.get(f"/api/v1/documents/{failed['document_id']}").status_code == 404


def test_a_collection_of_the_old_one_object_per_row_layout_is_refused_clearly(
    make_api: ApiFactory, weaviate_server: WeaviateProcess
) -> None:
    name = f"Old{uuid.uuid4().hex[:12]}"
    client = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=weaviate_server.ports.http, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=weaviate_server.ports.grpc, grpc_secure=False,
        skip_init_checks=True,
    )  # fmt: skip
    try:
        client.collections.create(
            name,
            properties=[Property(name=p, data_type=DataType.TEXT) for p in ("document_id", "text")],
            vector_config=Configure.Vectors.self_provided(),
        )
        with (
            make_api(weaviate_collection=name) as server,
            httpx.Client(base_url=server.url, timeout=60) as api,
        ):
            assert api.get("/readyz").status_code == 503
            response = api.get("/api/v1/search", params={"q": "anything"})
            assert response.status_code == 503
            assert "created by an older IndexForge" in response.json()["error"]
    finally:
        client.collections.delete(name)
        client.close()

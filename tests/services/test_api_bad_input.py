"""Bad input to the API gets a clear 4xx, the service stays up, nothing partial is stored;
a schemathesis run over the OpenAPI finds no 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from schemathesis import GenerationMode

from .conftest import ApiFactory, ServerThread, metric
from .fuzzing import fuzz_for_server_errors
from .workbooks import encrypted_xlsx, products_xlsx, truncated_xlsx, wide_xlsx, zip_bomb

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LIMIT = 1024 * 1024
HUGE_TEXT = json.dumps({"text": "a" * 1_000_001}).encode()


@pytest.fixture(scope="module")
def bad_api(make_api: ApiFactory) -> Iterator[ServerThread]:
    with make_api(max_upload_bytes=LIMIT) as server:
        yield server


@pytest.fixture
def client(bad_api: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bad_api.url, timeout=60) as c:
        yield c


def file(name: str, data: bytes, mime: str = "application/octet-stream") -> dict[str, Any]:
    return {"files": {"file": (name, data, mime)}}


def raw(body: bytes, content_type: str | None) -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": content_type} if content_type else {}}


UPLOADS = [
    ("corrupt xlsx", file("a.xlsx", truncated_xlsx(), XLSX), 400, "corrupt"),
    ("xlsx renamed .csv", file("a.csv", products_xlsx(), "text/csv"), 415, "not text"),
    ("0-byte file", file("a.txt", b""), 400, "empty (0 bytes)"),
    ("over the limit", file("a.csv", b"a\n" * (LIMIT // 2 + 1)), 413, "limit is 1048576"),
    ("zip bomb", file("a.xlsx", zip_bomb(64), XLSX), 422, "zip bomb"),
    ("10k columns", file("a.xlsx", wide_xlsx(10_000), XLSX), 422, "10000 columns"),
    ("encrypted", file("a.xlsx", encrypted_xlsx(), XLSX), 415, "password"),
    ("non-UTF-8 csv", file("a.csv", "prix;café\n1;2\n".encode("latin-1")), 422, "UTF-8"),
    ("unknown type", file("a.docx", b"PK\x03\x04"), 415, "unsupported file type"),
    ("no file part", {"files": {"other": ("a.txt", b"x")}}, 422, "named 'file'"),
    ("blank text", {"json": {"text": "   "}}, 422, "blank"),
    ("empty text", {"json": {"text": ""}}, 422, "at least 1"),
    ("unknown field", {"json": {"text": "x", "evil": 1}}, 422, "evil"),
    ("not JSON", raw(b"{nope", "application/json"), 422, "JSON"),
    ("JSON array", raw(b"[1, 2]", "application/json"), 422, "object"),
    ("non-UTF-8 JSON", raw(b'{"text": "\xff"}', "application/json"), 400, "UTF-8"),
    ("text/plain body", raw(b"hello", "text/plain"), 415, "application/json"),
    ("text too long", raw(HUGE_TEXT, "application/json"), 422, "at most 1000000 characters"),
    ("body over limit", raw(HUGE_TEXT * 2, "application/json"), 413, "bytes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "status", "words"), [c[1:] for c in UPLOADS], ids=[c[0] for c in UPLOADS]
)
def test_bad_uploads_get_a_clear_4xx(
    client: httpx.Client, kwargs: dict[str, Any], status: int, words: str
) -> None:
    response = client.post("/api/v1/documents", **kwargs)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["error"], response.json()


QUERIES = [
    ("empty query", {"q": ""}, "at least 1"),
    ("blank query", {"q": "   "}, "blank"),
    ("missing query", {}, "q"),
    ("limit 0", {"q": "x", "limit": 0}, "greater than or equal to 1"),
    ("limit 101", {"q": "x", "limit": 101}, "less than or equal to 100"),
    ("limit not a number", {"q": "x", "limit": "ten"}, "integer"),
    ("query too long", {"q": "x" * 1001}, "at most 1000"),
    ("empty filter", {"q": "x", "kind": ""}, "at least 1"),
]


@pytest.mark.parametrize(("params", "words"), [c[1:] for c in QUERIES], ids=[c[0] for c in QUERIES])
def test_bad_searches_get_422(client: httpx.Client, params: dict[str, Any], words: str) -> None:
    response = client.get("/api/v1/search", params=params)
    assert response.status_code == 422, response.text[:300]
    assert words in response.json()["error"], response.json()


def test_bad_ids_and_unknown_resources(client: httpx.Client) -> None:
    assert client.get("/api/v1/documents/not-a-uuid").status_code == 422
    unknown = client.get("/api/v1/documents/8d3c8e5e-3f43-4a53-9d1c-8a1f58f1e2b1")
    assert unknown.status_code == 404 and "no document" in unknown.json()["error"]
    assert client.get("/api/v1/jobs/XYZ").status_code == 422
    assert client.get(f"/api/v1/jobs/{'0' * 32}").status_code == 404


def test_after_all_that_the_service_is_up_and_nothing_was_stored(
    client: httpx.Client, bad_api: ServerThread
) -> None:
    for _, kwargs, _, _ in UPLOADS:
        client.post("/api/v1/documents", **kwargs)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    app = bad_api.app
    assert metric(app, "api_ingest_jobs_total", kind="xlsx", result="completed") == 0
    assert metric(app, "api_ingest_jobs_total", kind="xlsx", result="failed") == 0
    found = client.get("/api/v1/search", params={"q": "fridge café products", "limit": 100})
    assert found.status_code == 200 and found.json()["results"] == []


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error(bad_api: ServerThread, mode: GenerationMode) -> None:
    seen = fuzz_for_server_errors(bad_api.url, mode)
    paths = {path for _, path, _ in seen}
    assert {"/api/v1/search", "/api/v1/documents"} <= paths, seen
    if mode is GenerationMode.NEGATIVE:
        assert any(kind == 4 for _, _, kind in seen), seen

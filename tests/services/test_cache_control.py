"""Cache-Control through the real API app: what Kong's proxy-cache (`cache_control: true`)
may keep. Jobs, documents, writes and errors: never; search answers: max-age N."""

from __future__ import annotations

import httpx

from .conftest import ApiFactory, wait_job

NO_STORE = "no-store"


def test_jobs_documents_writes_and_errors_are_never_cacheable(make_api: ApiFactory) -> None:
    with make_api() as server, httpx.Client(base_url=server.url, timeout=60) as c:
        upload = c.post("/api/v1/documents", json={"text": "Kettles boil water quickly."})
        assert upload.status_code == 202
        assert upload.headers["Cache-Control"] == NO_STORE
        job_url = upload.json()["status_url"]
        # The first poll says "queued": a cached copy would say so for minutes.
        assert c.get(job_url).headers["Cache-Control"] == NO_STORE
        job = wait_job(c, upload.json()["job_id"])
        assert c.get(job_url).headers["Cache-Control"] == NO_STORE

        document = c.get(f"/api/v1/documents/{job['document_id']}")
        assert document.status_code == 200
        assert document.headers["Cache-Control"] == NO_STORE
        deleted = c.delete(f"/api/v1/documents/{job['document_id']}")
        assert deleted.status_code == 200 and deleted.headers["Cache-Control"] == NO_STORE
        gone = c.get(f"/api/v1/documents/{job['document_id']}")
        assert gone.status_code == 404 and gone.headers["Cache-Control"] == NO_STORE

        # Errors of the cacheable route are not cacheable either.
        blank = c.get("/api/v1/search", params={"q": "   "})
        assert blank.status_code == 422 and blank.headers["Cache-Control"] == NO_STORE
        assert c.get("/api/v1/nothing-here").headers["Cache-Control"] == NO_STORE
        assert c.get("/readyz").headers["Cache-Control"] == NO_STORE


def search_cache_control(make_api: ApiFactory, **overrides: int) -> str:
    with (
        make_api(**overrides) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        found = c.get("/api/v1/search", params={"q": "boiling water"})
        assert found.status_code == 200
        return found.headers["Cache-Control"]


def test_search_answers_carry_the_gateway_max_age(make_api: ApiFactory) -> None:
    assert search_cache_control(make_api, gateway_cache_max_age_seconds=17) == (
        "public, max-age=17"
    )
    assert search_cache_control(make_api) == "public, max-age=30"  # the default bound
    # 0 turns caching at the gateway off.
    assert search_cache_control(make_api, gateway_cache_max_age_seconds=0) == NO_STORE

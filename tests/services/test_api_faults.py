"""Faults: Excel processor down, a batch failing mid-write, Redis down, Weaviate down.

Each dependency is really stopped (a port nobody listens on, SIGKILL) and, where it matters,
brought back while the API keeps running: it must recover without a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import free_port
from tests.stack.weaviate import WeaviateProcess
from tests.waiting import wait_for

from .conftest import ApiFactory, RedisProcess, ServerThread, failing_upsert, metric, wait_job
from .workbooks import products_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def post_text(client: httpx.Client, text: str) -> dict[str, Any]:
    accepted = client.post("/api/v1/documents", json={"text": text})
    assert accepted.status_code == 202, accepted.text[:300]
    body: dict[str, Any] = accepted.json()
    return body


def readiness(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    return response.status_code, response.json()["checks"]


def test_excel_down_fails_the_job_clearly_and_writes_nothing(make_api: ApiFactory) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with make_api(excel_url=dead) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        accepted = c.post(
            "/api/v1/documents", files={"file": ("products.xlsx", products_xlsx(), XLSX)}
        )
        assert accepted.status_code == 202
        job = wait_job(c, accepted.json()["job_id"])
        assert (job["status"], job["reason"], job["written"]) == ("failed", "excel_unavailable", 0)
        assert job["error"] == "the Excel processor is unavailable; upload again later"
        # The details stay in the log: no address, no client exception in what clients read.
        assert dead.split("//")[1] not in str(job) and "ConnectError" not in str(job)
        assert job["correlation_id"] == accepted.headers["X-Request-ID"]
        assert c.get(f"/api/v1/documents/{job['document_id']}").status_code == 404
        # Excel is optional for readiness: search and text uploads still work.
        status, checks = readiness(c)
        assert status == 200 and checks["excel"] == {"ok": False, "required": False}
        app = server.app
        assert metric(app, "api_ingest_jobs_total", kind="xlsx", result="failed") == 1


def test_a_failing_batch_rolls_back_what_was_written(make_api: ApiFactory) -> None:
    with (
        make_api(weaviate_batch_size=2) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        store = server.app.state.api_service.store
        # The 3rd write fails: two batches (4 rows) are already in Weaviate.
        with failing_upsert(
            store, on_call=3, message="simulated failure of the third batch"
        ) as calls:
            accepted = c.post(
                "/api/v1/documents", files={"file": ("products.xlsx", products_xlsx(), XLSX)}
            )
            job = wait_job(c, accepted.json()["job_id"])
        assert (job["status"], job["reason"]) == ("failed", "weaviate_unavailable"), job
        assert calls.count == 3 and "third batch" not in job["error"]  # logged, not shown
        assert job["error"] == "the search backend is unavailable; upload again later"
        assert c.get(f"/api/v1/documents/{job['document_id']}").status_code == 404
        hits = c.get("/api/v1/search", params={"q": "fridge"}).json()["results"]
        assert hits == []


def test_redis_down_search_still_answers_and_the_cache_comes_back(
    make_api: ApiFactory, private_redis: RedisProcess
) -> None:
    with (
        make_api(redis_url=private_redis.url, breaker_reset_seconds=1.0) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        job = wait_job(c, post_text(c, "Glaciers carve valleys over thousands of years.")["job_id"])
        assert job["status"] == "completed"
        q = {"q": "how ice shapes mountains"}
        assert c.get("/api/v1/search", params=q).headers["X-Cache"] == "miss"
        assert c.get("/api/v1/search", params=q).headers["X-Cache"] == "hit"

        private_redis.kill()
        down = c.get("/api/v1/search", params=q)
        assert down.status_code == 200 and down.headers["X-Cache"] == "miss"  # uncached
        assert down.json()["results"][0]["document_id"] == job["document_id"]
        status, checks = readiness(c)
        assert status == 200 and checks["redis"] == {"ok": False, "required": False}
        # Jobs still run and report, from the pod's in-process fallback.
        during = wait_job(c, post_text(c, "Icebergs calve from glaciers.")["job_id"])
        assert during["status"] == "completed"

        private_redis.start()

        def cached_in_redis() -> bool:
            c.get("/api/v1/search", params={"q": "ice"})
            return c.get("/api/v1/search", params={"q": "ice"}).headers["X-Cache"] == "hit"

        wait_for(cached_in_redis, timeout=30, what="search answers cached in Redis again")
        # A probe right after the restart can still fail (seen once in a full run, most likely
        # a pooled connection from before it); the kubelet probes again within seconds.
        wait_for(lambda: readiness(c)[1]["redis"]["ok"] is True, timeout=10,
                 what="readiness reports Redis up again")  # fmt: skip
        status, _ = readiness(c)
        assert status == 200


@pytest.fixture
def private_weaviate(ml_server: ServerThread, tmp_path: Path) -> Iterator[WeaviateProcess]:
    """A Weaviate of this test alone: it is killed and restarted."""
    server = WeaviateProcess(tmp_path / "weaviate", ml_server.url)
    server.start()
    yield server
    server.stop()


def test_weaviate_down_is_503_on_its_routes_while_the_pod_stays_ready_then_recovers(
    make_api: ApiFactory, private_weaviate: WeaviateProcess
) -> None:
    wiring = {
        "weaviate_url": private_weaviate.url,
        "weaviate_grpc_port": private_weaviate.ports.grpc,
    }
    with make_api(**wiring) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        job = wait_job(c, post_text(c, "Honey bees pollinate orchards in spring.")["job_id"])
        assert job["status"] == "completed"
        doc = job["document_id"]

        # A clean stop: after SIGKILL, Weaviate 1.35 may lose the last writes' vector index
        # entries (buffered commit log), which is its durability story, not our recovery.
        private_weaviate.stop()
        down = c.get("/api/v1/search", params={"q": "insects and fruit trees"})
        assert down.status_code == 503, down.text[:300]
        assert down.json()["error"] == "search backend unavailable"
        assert down.json()["code"] == "search_unavailable"
        assert down.json()["correlation_id"] == down.headers["X-Request-ID"]
        assert str(private_weaviate.ports.http) not in down.text
        # Reported, but the pod stays in the Service: every pod is in the same position,
        # and removing them all would turn search 503s into an outage of every route.
        status, checks = readiness(c)
        assert status == 200 and checks["weaviate"] == {"ok": False, "required": False}
        assert c.get(f"/api/v1/documents/{doc}").status_code == 503
        failed = wait_job(c, post_text(c, "Wasps also visit flowers.")["job_id"])
        assert (failed["status"], failed["reason"]) == ("failed", "weaviate_unavailable")
        assert c.get("/healthz").status_code == 200  # alive: a restart would not help

        private_weaviate.start()  # same ports, same data directory
        wait_for(
            lambda: readiness(c)[1]["weaviate"]["ok"], timeout=60, what="Weaviate reachable again"
        )
        back = c.get("/api/v1/search", params={"q": "insects and fruit trees"})
        assert back.status_code == 200, back.text
        assert back.json()["results"][0]["document_id"] == doc
        # The failed job's rollback, deferred while Weaviate was down, has been done.
        wait_for(
            lambda: metric(server.app, "api_pending_rollbacks") == 0,
            timeout=30,
            what="deferred rollback",
        )
        assert c.get(f"/api/v1/documents/{failed['document_id']}").status_code == 404


def test_health_is_also_served_under_the_gateway_prefix(make_api: ApiFactory) -> None:
    """Kong forwards /api/v1/* unchanged; the chart's `helm test` calls /api/v1/healthz."""
    with make_api() as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/api/v1/healthz").json() == {"status": "ok"}
        assert c.get("/api/v1/readyz").status_code == 200
        assert c.get("/api/v1/nothing-here").status_code == 404

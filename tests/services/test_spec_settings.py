"""Settings the operator writes take effect in the running service (issue 10): the ML cache
TTL comes from `INDEXFORGE_CACHE_DEFAULT_TTL_SECONDS`, the API enforces the Excel upload
limit before a workbook travels to the Excel processor."""

from __future__ import annotations

import httpx
import pytest
import redis

from indexforge_services.ml.app import create_app as create_ml_app
from indexforge_services.ml.model import Embedder

from .conftest import ApiFactory, RedisProcess, ServerThread, metric, ml_settings, running_client
from .workbooks import products_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_ml_cache_entries_live_for_the_configured_default_ttl(
    embedder: Embedder, private_redis: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the operator renders for `ml.cacheTtlSeconds: 1234`.
    monkeypatch.setenv("INDEXFORGE_CACHE_DEFAULT_TTL_SECONDS", "1234")
    settings = ml_settings(redis_url=private_redis.url, cache_stale_seconds=0)
    app = create_ml_app(settings, encoder=embedder)
    async with running_client(app) as client:
        response = await client.post("/vectors", json={"text": "how long am I kept?"})
        assert response.status_code == 200
    direct = redis.Redis.from_url(private_redis.url)
    try:
        keys = direct.keys(f"{settings.cache_namespace}:v:*")
        assert len(keys) == 1
        ttl = direct.ttl(keys[0])
    finally:
        direct.close()
    assert 1230 <= ttl <= 1234, ttl  # the built-in 3600 s would have won before


def test_the_api_refuses_a_workbook_over_the_excel_limit_without_sending_it(
    make_api: ApiFactory, excel_server: ServerThread
) -> None:
    workbook = products_xlsx()
    parsed = {"method": "POST", "route": "/api/v1/excel/parse", "status": "200"}
    with (
        make_api(excel_max_upload_bytes=1024) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        before = metric(excel_server.app, "http_requests_total", **parsed)
        refused = c.post("/api/v1/documents", files={"file": ("products.xlsx", workbook, XLSX)})
        assert refused.status_code == 413, refused.text
        assert refused.json()["code"] == "too_large"
        assert f"{len(workbook)} bytes; the limit is 1024" in refused.json()["error"]
        assert metric(excel_server.app, "http_requests_total", **parsed) == before
        # Text uploads are not spreadsheets: the Excel limit does not apply to them.
        text = c.post("/api/v1/documents", json={"text": "x" * 2000})
        assert text.status_code == 202

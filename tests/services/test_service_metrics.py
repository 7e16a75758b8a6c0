"""Series the SLOs and dashboards rely on: the 0.2 s bucket, requests in flight, upload bytes."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from indexforge_services.api.metrics import ApiMetrics
from indexforge_services.common.metrics import LATENCY_BUCKETS, HttpMetrics, HttpMetricsMiddleware


def test_latency_slo_threshold_is_a_bucket_boundary() -> None:
    # The latency SLI counts requests in the le="0.2" bucket (operator's slo.py).
    assert 0.2 in LATENCY_BUCKETS
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)


def test_requests_in_flight_rise_during_a_request_and_fall_after() -> None:
    registry = CollectorRegistry()
    metrics = HttpMetrics(registry)
    seen: list[float] = []

    async def endpoint(_: Request) -> JSONResponse:
        seen.append(registry.get_sample_value("http_requests_in_flight") or 0)
        return JSONResponse({})

    async def fail(_: Request) -> JSONResponse:
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/x", endpoint), Route("/fail", fail)])
    wrapped = HttpMetricsMiddleware(app, metrics=metrics, skip=frozenset())

    async def run() -> None:
        transport = httpx.ASGITransport(app=wrapped, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/x")).status_code == 200
            assert (await client.get("/fail")).status_code == 500

    asyncio.run(run())
    assert seen == [1.0]
    assert registry.get_sample_value("http_requests_in_flight") == 0  # even after a crash
    fast = registry.get_sample_value(
        "http_request_duration_seconds_bucket",
        {"method": "GET", "route": "/x", "status": "200", "le": "0.2"},
    )
    assert fast == 1


def test_upload_bytes_by_kind() -> None:
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)
    metrics.upload_bytes.labels("csv").inc(1234)
    assert registry.get_sample_value("api_upload_bytes_total", {"kind": "csv"}) == 1234

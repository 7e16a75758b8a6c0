"""One upload, one trace: spans of the API, the Excel processor and the ML service share the
upload's trace id, received by an in-test OTLP receiver and by a real Jaeger (v2, the rendered
config on loopback), read back from Jaeger's query API as Grafana and the UI read it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor

from indexforge_services.excel.app import create_app as create_excel_app
from indexforge_services.ml.app import create_app as create_ml_app
from indexforge_services.ml.model import Embedder
from tests.stack.jaeger import JaegerError, JaegerProcess, spans_by_service

from .conftest import ApiFactory, ServerThread, excel_settings, ml_settings, wait_job
from .otlp import OtlpReceiver
from .workbooks import products_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TRACED = {"trace_sample_ratio": 1.0}


class JaegerSpans:
    """Spans as Jaeger's query API returns them, in the in-test receiver's shape."""

    def __init__(self, jaeger: JaegerProcess) -> None:
        self.jaeger = jaeger
        self.url = jaeger.otlp_http_url

    @property
    def spans(self) -> list[dict[str, Any]]:
        out = []
        for trace in self.jaeger.traces("indexforge-api", limit="20"):
            services = [service for service, _ in spans_by_service(trace)]
            for span, service in zip(trace["spans"], services, strict=True):
                parents = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
                out.append(
                    {
                        "name": span["operationName"],
                        "trace_id": span["traceID"],
                        "span_id": span["spanID"],
                        "parent": parents[0] if parents else "",
                        "service": service,
                    }
                )
        return out


SpanSink = OtlpReceiver | JaegerSpans


@pytest.fixture(params=["otlp-receiver", "jaeger"])
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpanSink]:
    try:
        if request.param == "otlp-receiver":
            with OtlpReceiver() as r:
                yield r
            return
        jaeger = JaegerProcess(tmp_path / "jaeger")
        try:
            jaeger.start()
        except JaegerError as exc:
            # Fail, never skip: a missing build must not make the Jaeger test silently vanish.
            pytest.fail(str(exc))
        try:
            yield JaegerSpans(jaeger)
        finally:
            jaeger.stop()
    finally:
        # httpx/redis instrumentation is process-wide: undo it for the other tests.
        HTTPXClientInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()


def flush(*servers: ServerThread) -> None:
    for server in servers:
        provider = server.app.state.service.tracer_provider
        assert provider is not None
        provider.force_flush()


def test_one_upload_is_one_trace_across_api_excel_and_ml(
    receiver: SpanSink, embedder: Embedder, make_api: ApiFactory
) -> None:
    ml_app = create_ml_app(ml_settings(otlp_endpoint=receiver.url, **TRACED), encoder=embedder)
    excel_app = create_excel_app(excel_settings(otlp_endpoint=receiver.url, **TRACED))
    with (
        ServerThread(ml_app) as ml,
        ServerThread(excel_app) as excel,
        make_api(otlp_endpoint=receiver.url, ml_url=ml.url, excel_url=excel.url, **TRACED) as api,
        httpx.Client(base_url=api.url, timeout=60) as client,
    ):
        accepted = client.post(
            "/api/v1/documents", files={"file": ("products.xlsx", products_xlsx(), XLSX)}
        )
        assert accepted.status_code == 202
        assert wait_job(client, accepted.json()["job_id"])["status"] == "completed"

        wanted = {
            ("indexforge-api", "POST /api/v1/documents"),
            ("indexforge-api", "api.ingest"),
            ("indexforge-excel", "POST /api/v1/excel/parse"),
            ("indexforge-excel", "excel.parse"),
            ("indexforge-ml", "POST /api/v1/ml/embeddings"),
            ("indexforge-ml", "ml.embed"),
        }
        in_trace: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            flush(api, excel, ml)
            spans = receiver.spans  # one snapshot (a query, for Jaeger)
            roots = [
                s for s in spans
                if (s["service"], s["name"]) == ("indexforge-api", "POST /api/v1/documents")
            ]  # fmt: skip
            if roots:
                assert len({s["trace_id"] for s in roots}) == 1, "one upload, one trace"
                trace_id = roots[0]["trace_id"]
                in_trace = [s for s in spans if s["trace_id"] == trace_id]
                if wanted <= {(s["service"], s["name"]) for s in in_trace}:
                    break
            time.sleep(0.2)

    found = {(s["service"], s["name"]) for s in in_trace}
    assert wanted <= found, sorted(found)
    # One tree: a single root (the upload request; the test's own httpx client span when
    # the process-wide httpx instrumentation is on), every other span's parent in the trace.
    roots = [s for s in in_trace if not s["parent"]]
    assert len(roots) == 1, roots
    ids = {s["span_id"] for s in in_trace}
    assert all(s["parent"] in ids for s in in_trace if s is not roots[0])
    if isinstance(receiver, JaegerSpans):
        services = set(receiver.jaeger.services())
        assert {"indexforge-api", "indexforge-excel", "indexforge-ml"} <= services, services

"""Sentry events through an in-memory transport; spans through an in-test OTLP receiver."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
import sentry_sdk
from fastapi import FastAPI
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from indexforge_services.ml.app import create_app
from indexforge_services.ml.model import Embedder, Vectors

from .conftest import RedisProcess, ServerThread, ml_settings, running_client
from .otlp import OtlpReceiver

# -- Sentry -----------------------------------------------------------------------------------


class MemoryTransport(Transport):
    """Keeps envelopes instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [e for env in self.envelopes if (e := env.get_event()) is not None]

    def transactions(self) -> list[dict[str, Any]]:
        return [e for env in self.envelopes if (e := env.get_transaction_event()) is not None]


class FailingEncoder:
    name = "failing-fake"
    model_id = "failing-fake@0"
    device = "cpu"
    dim = 4
    max_seq_length = 16

    def encode(self, texts: Sequence[str]) -> Vectors:
        raise RuntimeError(f"simulated device failure on {len(texts)} texts")

    def meta(self) -> dict[str, Any]:
        return {"model": {}}


@pytest.fixture
def sentry_transport() -> Iterator[MemoryTransport]:
    transport = MemoryTransport()
    yield transport
    sentry_sdk.init()  # back to a disabled client for the rest of the session


def sentry_app(transport: MemoryTransport) -> FastAPI:
    settings = ml_settings(
        sentry_dsn="https://public@sentry.invalid/1",
        sentry_traces_sample_rate=1.0,
        environment="test",
    )
    return create_app(settings, encoder=FailingEncoder(), sentry_transport=transport)


async def test_sentry_event_has_fingerprint_and_ml_context(
    sentry_transport: MemoryTransport,
) -> None:
    app = sentry_app(sentry_transport)
    async with running_client(app) as client:
        response = await client.post("/vectors", json={"text": "boom"})
        assert response.status_code == 500
        assert response.json()["error"] == "internal error"
        ok = await client.get("/healthz")  # a non-ML transaction gets no ml context
        assert ok.status_code == 200
    sentry_sdk.flush()

    (event,) = sentry_transport.events()  # captured once, not again per log.exception
    assert event["fingerprint"] == ["RuntimeError"]
    assert event["environment"] == "test"
    assert event["release"] == "indexforge-ml@0.1.0"
    assert event["transaction"] == "/vectors"
    assert event["contexts"]["ml"] == {
        "model": "failing-fake",
        "device": "cpu",
        "max_batch_size": 32,
        "batch_size": 1,
    }
    by_name = {t["transaction"]: t for t in sentry_transport.transactions()}
    assert "ml" in by_name["/vectors"]["contexts"]
    assert "ml" not in by_name["/healthz"]["contexts"]


async def test_sentry_breadcrumbs_are_scrubbed_of_secrets(
    sentry_transport: MemoryTransport,
) -> None:
    app = sentry_app(sentry_transport)

    async def leaky() -> None:
        # A library logging its connection URL and auth header on the way to a failure.
        logging.getLogger("some.client").warning(
            "connecting to redis://:hunter2@cache:6379/0",
            extra={"password": "hunter2", "headers": {"Authorization": "Bearer abc.def"}},
        )
        raise KeyError("missing")

    app.add_api_route("/api/v1/ml/leaky", leaky, methods=["GET"])
    async with running_client(app) as client:
        assert (await client.get("/api/v1/ml/leaky")).status_code == 500
    sentry_sdk.flush()

    (event,) = sentry_transport.events()
    assert event["fingerprint"] == ["KeyError"]
    crumbs = str(event["breadcrumbs"])
    assert "redis://:[Filtered]@cache" in crumbs
    assert "hunter2" not in crumbs and "abc.def" not in crumbs


# -- OpenTelemetry ----------------------------------------------------------------------------


@pytest.fixture
def traced_server(
    embedder: Embedder, redis_server: RedisProcess
) -> Iterator[tuple[ServerThread, OtlpReceiver]]:
    with OtlpReceiver() as receiver:
        settings = ml_settings(
            otlp_endpoint=receiver.url, trace_sample_ratio=1.0, redis_url=redis_server.url
        )
        app = create_app(settings, encoder=embedder)
        try:
            with ServerThread(app) as server:
                yield server, receiver
        finally:
            # httpx/redis instrumentation is process-wide: undo it for the other tests.
            HTTPXClientInstrumentor().uninstrument()
            RedisInstrumentor().uninstrument()


def test_spans_reach_the_otlp_receiver_with_propagated_context(
    traced_server: tuple[ServerThread, OtlpReceiver],
) -> None:
    server, receiver = traced_server
    provider = server.app.state.service.tracer_provider
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("test-root") as root, httpx.Client(timeout=60) as client:
        response = client.post(f"{server.url}/vectors", json={"text": f"trace me {uuid.uuid4()}"})
        assert response.status_code == 200
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert np.isfinite(response.json()["vector"]).all()

    deadline = time.monotonic() + 15
    names: set[str] = set()
    while time.monotonic() < deadline:
        provider.force_flush()
        names = {s["name"] for s in receiver.spans if s["trace_id"] == trace_id}
        if {"POST /vectors", "ml.embed"} <= names and any(
            s["name"] == "ml.forward" for s in receiver.spans
        ):
            break
        time.sleep(0.2)
    in_trace = [s for s in receiver.spans if s["trace_id"] == trace_id]
    assert {"test-root", "POST /vectors", "ml.embed"} <= names, names
    assert {s["service"] for s in in_trace} == {"indexforge-ml"}
    assert any(s["name"] in ("GET", "SET") for s in in_trace), names  # redis spans

    # The outgoing httpx call carried traceparent: the server span is its child.
    client_span = next(s for s in in_trace if s["name"] == "POST" and s["parent"])
    server_span = next(
        s
        for s in in_trace
        if s["name"] == "POST /vectors" and s["parent"] == client_span["span_id"]
    )
    assert server_span["trace_id"] == trace_id
    # The batched forward pass links back to the request it served.
    forward = [s for s in receiver.spans if s["name"] == "ml.forward"]
    assert any(trace_id in {t for t, _ in s["links"]} for s in forward)


async def test_tracing_is_off_without_endpoint(embedder: Embedder) -> None:
    app = create_app(ml_settings(), encoder=embedder)
    assert app.state.service.tracer_provider is None
    async with running_client(app) as client:
        assert (await client.get("/healthz")).status_code == 200

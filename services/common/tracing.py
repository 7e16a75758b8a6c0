"""OpenTelemetry tracing: OTLP/HTTP exporter, ratio sampling, FastAPI/httpx/redis spans.

Off unless `otlp_endpoint` is set. The provider is passed explicitly instead of being made
the process-global one, so a second app in the same process (tests) gets its own.
httpx and redis instrumentation patch the libraries process-wide; they are installed once,
bound to the first provider. Outgoing httpx calls carry `traceparent` (W3C propagation),
which is how the API's calls to the ML service join the same trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from .settings import ServiceSettings

log = logging.getLogger(__name__)

# Probes and scrapes would drown the real traffic in traces.
EXCLUDED_URLS = "/healthz,/readyz,/metrics,/.well-known/live,/.well-known/ready"


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP base URL -> the traces signal URL (an explicit /v1/traces is kept)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def make_provider(settings: ServiceSettings) -> TracerProvider | None:
    if not settings.otlp_endpoint:
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": settings.service_name,
                "service.version": settings.version,
                "deployment.environment": settings.environment,
            }
        ),
        # Respect the caller's sampling decision; sample new traces at the configured ratio.
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    exporter = OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint), timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    return provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    httpx_instr = HTTPXClientInstrumentor()
    if not httpx_instr.is_instrumented_by_opentelemetry:
        httpx_instr.instrument(tracer_provider=provider)
    redis_instr = RedisInstrumentor()
    if not redis_instr.is_instrumented_by_opentelemetry:
        redis_instr.instrument(tracer_provider=provider)


def outgoing_headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers carrying the current trace context, for clients that are not instrumented."""
    headers = dict(extra or {})
    propagate.inject(headers)
    return headers


def tracer(provider: TracerProvider | None, name: str) -> trace.Tracer:
    """A tracer from our provider, or a no-op one when tracing is off."""
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer(name)

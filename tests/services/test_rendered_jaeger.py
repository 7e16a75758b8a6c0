"""The Jaeger v2 config the operator renders, loaded by the real `jaeger` binary of the same
release as the deployed image: listeners moved to 127.0.0.1 free ports and Badger under a tmp
directory, nothing else changed. A key Jaeger rejects, a missing listener or a broken
pipeline fails here instead of in a cluster (issue 11: Jaeger had never met the software)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from indexforge_operator.spec import IndexForgeSpec
from tests.cluster.tools import JAEGER_RELEASE
from tests.stack.jaeger import (
    JaegerError,
    JaegerPorts,
    JaegerProcess,
    jaeger_binary,
    local_config,
    rendered_config,
    spans_by_service,
)


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    try:
        jaeger_binary()
    except JaegerError as exc:
        pytest.fail(str(exc))  # never skip: a missing build must not hide these tests


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[JaegerProcess]:
    process = JaegerProcess(tmp_path / "jaeger")
    yield process
    process.stop()


def export_span(jaeger: JaegerProcess, service: str, name: str) -> str:
    """One span through the OTLP/HTTP receiver, as the services send it; returns its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{jaeger.otlp_http_url}/v1/traces", timeout=5)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span(name) as span:
        trace_id = f"{span.get_span_context().trace_id:032x}"
    provider.shutdown()
    return trace_id


def wait_trace(
    jaeger: JaegerProcess, service: str, *, timeout: float = 20.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        traces = jaeger.traces(service)
        if traces:
            return traces
        time.sleep(0.3)
    raise AssertionError(f"no trace of {service} after {timeout}s:\n{jaeger.log_tail()}")


def test_image_and_test_binary_are_one_release() -> None:
    image = IndexForgeSpec().monitoring.jaeger.image
    assert image.rsplit(":", 1)[1] == JAEGER_RELEASE.removeprefix("v"), image


def test_rendered_config_starts_healthy_and_stores_spans(jaeger: JaegerProcess) -> None:
    jaeger.start()
    trace_id = export_span(jaeger, "rendered-config-check", "probe")
    (trace,) = wait_trace(jaeger, "rendered-config-check")
    assert trace["traceID"].lstrip("0") == trace_id.lstrip("0")
    assert spans_by_service(trace) == [("rendered-config-check", "probe")]
    assert jaeger.services() == ["rendered-config-check"]  # no self-traces of the query API
    # Badger on disk (not ephemeral): spans survive a restart, as on the pod's PVC.
    jaeger.stop()
    jaeger.start()
    assert [t["traceID"] for t in jaeger.traces("rendered-config-check")] == [trace["traceID"]]


def test_non_default_retention_is_accepted(tmp_path: Path) -> None:
    spec = IndexForgeSpec.model_validate({"monitoring": {"jaeger": {"retention": "2w"}}})
    config = rendered_config(spec)
    backends = config["extensions"]["jaeger_storage"]["backends"]
    assert {b["badger"]["ttl"]["spans"] for b in backends.values()} == {"336h"}
    process = JaegerProcess(tmp_path / "jaeger", config=config)
    try:
        process.start()
    finally:
        process.stop()


def test_a_key_jaeger_rejects_fails_the_start(tmp_path: Path) -> None:
    """The check is not vacuous: the binary validates the config strictly."""
    config = rendered_config()
    config["extensions"]["jaeger_storage"]["backends"]["badger"]["badger"]["no_such_key"] = 1
    process = JaegerProcess(tmp_path / "jaeger", config=config)
    with pytest.raises(JaegerError, match="no_such_key"):
        process.start(timeout=30)


def test_every_listener_is_moved_to_loopback(tmp_path: Path) -> None:
    ports = JaegerPorts.allocate()
    config = local_config(rendered_config(), ports=ports, data_dir=tmp_path)
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == (
        f"127.0.0.1:{ports.otlp_http}"
    )
    extra = rendered_config()
    extra["extensions"]["zpages"] = {"endpoint": "0.0.0.0:55679"}
    with pytest.raises(JaegerError, match="55679"):
        local_config(extra, ports=ports, data_dir=tmp_path)

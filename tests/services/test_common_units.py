"""Pure pieces of the shared service code: settings, ids, logs, errors, scrubbing, limits."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from starlette.types import Receive, Scope, Send

from indexforge_services.common.correlation import CorrelationIdMiddleware, pick_correlation_id
from indexforge_services.common.errors import describe_validation_errors
from indexforge_services.common.logging import JsonFormatter
from indexforge_services.common.sentry import before_send_factory, exception_type, scrub
from indexforge_services.common.tracing import outgoing_headers, traces_url
from indexforge_services.ml.limits import check_dimensions, check_pairs, check_pooling, check_texts
from indexforge_services.ml.settings import MLSettings


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXFORGE_REDIS_URL", "redis://ml-redis:6379/0")
    monkeypatch.setenv("INDEXFORGE_BATCH_MAX_SIZE", "64")
    monkeypatch.setenv("INDEXFORGE_DEVICE", "cuda")
    monkeypatch.setenv("REDIS_URL", "redis://wrong:1/0")  # unprefixed: ignored
    settings = MLSettings()
    assert settings.redis_url == "redis://ml-redis:6379/0"
    assert settings.batch_max_size == 64 and settings.device == "cuda"
    assert settings.service_name == "indexforge-ml"


def test_settings_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXFORGE_TRACE_SAMPLE_RATIO", "1.5")
    with pytest.raises(ValueError, match="trace_sample_ratio"):
        MLSettings()


def test_sentry_dsn_from_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "dsn"
    secret.write_text("https://key@sentry.example/3\n")
    assert (
        MLSettings(sentry_dsn_file=secret).resolved_sentry_dsn() == "https://key@sentry.example/3"
    )
    assert MLSettings(sentry_dsn_file=tmp_path / "absent").resolved_sentry_dsn() is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"kong-request-id": "k1", "x-request-id": "x1"}, ("k1", "kong-request-id")),
        ({"x-request-id": "x1"}, ("x1", "x-request-id")),
        ({"x-request-id": "bad id with spaces"}, (None, None)),
        ({"x-request-id": "a" * 200}, (None, None)),
        ({}, (None, None)),
    ],
)
def test_pick_correlation_id(
    headers: dict[str, str], expected: tuple[str | None, str | None]
) -> None:
    cid, source = pick_correlation_id(headers)
    if expected[0] is None:
        assert len(cid) == 32 and source is None  # generated
    else:
        assert (cid, source) == expected


async def test_json_log_lines_carry_correlation_and_trace_ids() -> None:
    lines: list[dict[str, object]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter("svc").format(record)))

    logger = logging.getLogger("test.jsonlog")
    logger.addHandler(Collect())
    tracer = TracerProvider().get_tracer("t")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        with tracer.start_as_current_span("work"):
            logger.warning("hello %s", "world", extra={"items": 3})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=CorrelationIdMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/", headers={"Kong-Request-ID": "kong-9"})
    assert response.headers["x-request-id"] == "kong-9"
    (line,) = lines
    assert line["msg"] == "hello world" and line["service"] == "svc" and line["items"] == 3
    assert line["correlation_id"] == "kong-9" and line["level"] == "WARNING"
    assert len(str(line["trace_id"])) == 32 and len(str(line["span_id"])) == 16


def test_validation_summary_names_the_field_and_hides_input() -> None:
    errors = [
        {"loc": ("body", "texts", 2), "msg": "String too short", "type": "string_too_short",
         "input": "secret input"},
        {"loc": ("body", "x"), "msg": "Extra", "type": "extra_forbidden", "input": 1},
    ]  # fmt: skip
    message, details = describe_validation_errors(errors)
    assert message == "body.texts.2: String too short (and 1 more)"
    assert "secret input" not in json.dumps(details)


def test_scrub_removes_secrets_but_keeps_the_rest() -> None:
    crumb = {
        "message": "GET https://user:pa55@host/x with Bearer eyJhbGciOi.abc",
        "data": {"api_key": "k", "password": "p", "nested": [{"token": "t", "rows": 3}]},
    }
    assert scrub(crumb) == {
        "message": "GET https://user:[Filtered]@host/x with Bearer [Filtered]",
        "data": {
            "api_key": "[Filtered]",
            "password": "[Filtered]",
            "nested": [{"token": "[Filtered]", "rows": 3}],
        },
    }


def test_before_send_fingerprints_by_exception_type() -> None:
    before_send = before_send_factory([lambda e: e.setdefault("tags", {}).update(x="1")])
    try:
        raise TimeoutError("after 30s for id 1234")
    except TimeoutError as exc:
        hint = {"exc_info": (type(exc), exc, exc.__traceback__)}
    event = before_send({}, hint)
    assert event is not None and event["fingerprint"] == ["TimeoutError"]
    assert event["tags"] == {"x": "1"}
    assert exception_type({"exception": {"values": [{"type": "E", "module": "m"}]}}, {}) == "m.E"


def test_traces_url_and_outgoing_headers() -> None:
    assert traces_url("http://jaeger:4318") == "http://jaeger:4318/v1/traces"
    assert traces_url("http://jaeger:4318/v1/traces/") == "http://jaeger:4318/v1/traces"
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("out") as span:
        headers = outgoing_headers({"accept": "application/json"})
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert headers["accept"] == "application/json" and trace_id in headers["traceparent"]


def test_text_limits() -> None:
    assert check_texts(["ok"], max_chars=5, max_count=2) is None
    assert check_texts(["a", "b", "c"], max_chars=5, max_count=2) == (
        "texts: 3 texts in one request; the limit is 2"
    )
    assert check_texts(["ok", "toolong"], max_chars=5, max_count=2) == (
        "texts[1]: text has 7 characters; the limit is 5"
    )
    assert check_texts(["\u00a0 "], max_chars=5, max_count=1, field="text", indexed=False) == (
        "text: text is empty or only whitespace"
    )
    assert check_pairs([("a", "b")] * 3, max_chars=5, max_count=4) == (
        "pairs: 3 pairs in one request; the limit is 2"
    )
    assert check_pairs([("a", "  ")], max_chars=5, max_count=4) == (
        "pairs[0].b: text is empty or only whitespace"
    )
    assert check_dimensions(None, 384) is None and check_dimensions(384, 384) is None
    assert check_dimensions(128, 384) is not None
    assert check_pooling("masked_mean") is None and check_pooling("cls") is not None


def test_a_check_required_until_its_first_success_then_only_reported() -> None:
    """Readiness = this pod can serve: never-reached dependencies keep it out, later outages
    do not (services/common/health.py)."""
    import asyncio

    from indexforge_services.common.health import HealthChecks

    answers = iter([False, True, False, False])

    async def dependency() -> bool:
        return next(answers)

    async def optional() -> bool:
        return False

    checks = HealthChecks()
    checks.add("weaviate", dependency, until_first_success=True)
    checks.add("excel", optional, required=False)

    def run() -> tuple[bool, dict[str, dict[str, object]]]:
        return asyncio.run(checks.run())

    ready, report = run()  # never reached yet: out of the Service
    assert not ready and report["weaviate"] == {"ok": False, "required": True}
    ready, report = run()
    assert ready and report["weaviate"] == {"ok": True, "required": False}
    for _ in range(2):  # gone later: reported, the pod stays in
        ready, report = run()
        assert ready and report["weaviate"] == {"ok": False, "required": False}
    assert report["excel"] == {"ok": False, "required": False}

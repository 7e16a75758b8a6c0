"""Sentry: error events grouped by exception type, service enrichers, secrets scrubbed.

Off unless a DSN is configured (setting or mounted secret file). Tests pass a `transport`
that keeps events in memory, so nothing goes over the network.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.transport import Transport

from .settings import ServiceSettings

Event = dict[str, Any]
EventEnricher = Callable[[Event], None]

FILTERED = "[Filtered]"
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[-_]?key|authorization|auth|cookie|credential|dsn",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/@\s:]*):[^/@\s]+@", re.IGNORECASE)
_BEARER = re.compile(r"(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def scrub(value: Any, *, depth: int = 0) -> Any:
    """Replace values under secret-looking keys, and passwords inside URLs and auth strings."""
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {
            k: FILTERED if _is_secret_key(k) else scrub(v, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v, depth=depth + 1) for v in value]
    if isinstance(value, str):
        return _BEARER.sub(rf"\1{FILTERED}", _URL_PASSWORD.sub(rf"\1:{FILTERED}@", value))
    return value


def exception_type(event: Event, hint: dict[str, Any]) -> str | None:
    exc_info = hint.get("exc_info")
    if exc_info and exc_info[0] is not None:
        cls = exc_info[0]
        module = cls.__module__
        return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
    values = (event.get("exception") or {}).get("values") or []
    if values:
        last = values[-1]
        return ".".join(p for p in (last.get("module"), last.get("type")) if p) or None
    return None


def before_send_factory(
    enrichers: Iterable[EventEnricher],
) -> Callable[[Event, dict[str, Any]], Event | None]:
    enrichers = tuple(enrichers)

    def before_send(event: Event, hint: dict[str, Any]) -> Event | None:
        kind = exception_type(event, hint)
        if kind is not None:
            # One issue per error type: messages carry ids and sizes that would split groups.
            event["fingerprint"] = [kind]
        for enrich in enrichers:
            enrich(event)
        return event

    return before_send


def before_breadcrumb(crumb: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    return scrub(crumb)  # type: ignore[no-any-return]


def init_sentry(
    settings: ServiceSettings,
    *,
    enrichers: Iterable[EventEnricher] = (),
    transport: Transport | None = None,
) -> bool:
    """Initialise the SDK; returns False (and does nothing) when no DSN is configured."""
    dsn = settings.resolved_sentry_dsn()
    if dsn is None:
        return False
    # Transactions carry no exception, so the same hook only enriches them.
    before_send = before_send_factory(enrichers)
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        release=settings.release,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        profiles_sample_rate=settings.sentry_profiles_sample_rate,
        before_send=before_send,  # type: ignore[arg-type]
        before_send_transaction=before_send,  # type: ignore[arg-type]
        before_breadcrumb=before_breadcrumb,
        transport=transport,
        integrations=[
            # Transaction names are route templates, so ML routes are recognisable.
            StarletteIntegration(transaction_style="url"),
            FastApiIntegration(transaction_style="url"),
            # Log lines become breadcrumbs only: errors are captured once, where they are
            # handled (unhandled-error middleware), not again for every log.exception().
            LoggingIntegration(level=logging.INFO, event_level=None),
        ],
    )
    return True

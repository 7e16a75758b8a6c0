"""Sentry: error events grouped by exception type, service enrichers, secrets scrubbed.

Off unless a DSN is configured (setting or mounted secret file). Tests pass a `transport`
that keeps events in memory, so nothing goes over the network.

Scrubbing covers the whole event, not only breadcrumbs: stack-frame local variables,
request headers/cookies/data, messages. Values under secret-looking keys (Authorization,
apikey, X-IndexForge-Gateway-Token, cookies, passwords) are blanked, passwords inside URLs
and bearer strings too, and so is every occurrence of a configured secret (Redis password,
gateway tokens, Weaviate key) whatever key or text it hides in.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
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
# Deeper than any event Sentry serialises (frames -> vars -> nested values); past it, blank.
MAX_DEPTH = 20
# Shorter "secrets" would blank ordinary words all over the event.
MIN_SECRET_CHARS = 8
Secrets = Callable[[], Iterable[str]]


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def _scrub_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, FILTERED)
    return _BEARER.sub(rf"\1{FILTERED}", _URL_PASSWORD.sub(rf"\1:{FILTERED}@", text))


def scrub(value: Any, *, secrets: Sequence[str] = (), depth: int = 0) -> Any:
    """Replace values under secret-looking keys, passwords inside URLs and auth strings,
    and every occurrence of `secrets` (longest first, see `usable_secrets`)."""
    if depth > MAX_DEPTH:
        return FILTERED if isinstance(value, dict | list | tuple | str) else value
    if isinstance(value, dict):
        return {
            k: FILTERED if _is_secret_key(k) else scrub(v, secrets=secrets, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        if len(value) == 2 and _is_secret_key(value[0]):
            # A (name, value) pair: ASGI scope headers in frame variables.
            return [value[0], FILTERED]
        return [scrub(v, secrets=secrets, depth=depth + 1) for v in value]
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    return value


def usable_secrets(values: Iterable[str]) -> list[str]:
    """Distinct secrets long enough to look for, longest first (a secret containing another
    is blanked whole)."""
    return sorted({v for v in values if len(v) >= MIN_SECRET_CHARS}, key=len, reverse=True)


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
    enrichers: Iterable[EventEnricher], *, secrets: Secrets | None = None
) -> Callable[[Event, dict[str, Any]], Event | None]:
    enrichers = tuple(enrichers)

    def before_send(event: Event, hint: dict[str, Any]) -> Event | None:
        kind = exception_type(event, hint)
        if kind is not None:
            # One issue per error type: messages carry ids and sizes that would split groups.
            event["fingerprint"] = [kind]
        for enrich in enrichers:
            enrich(event)
        known = usable_secrets(secrets()) if secrets is not None else []
        scrubbed: Event = scrub(event, secrets=known)
        return scrubbed

    return before_send


def before_breadcrumb(crumb: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    return scrub(crumb)  # type: ignore[no-any-return]


def init_sentry(
    settings: ServiceSettings,
    *,
    enrichers: Iterable[EventEnricher] = (),
    transport: Transport | None = None,
    secrets: Secrets | None = None,
) -> bool:
    """Initialise the SDK; returns False (and does nothing) when no DSN is configured.

    `secrets` returns the values to blank wherever they appear (asked at every event, so
    rotated gateway tokens are covered)."""
    dsn = settings.resolved_sentry_dsn()
    if dsn is None:
        return False
    # Transactions carry no exception, so the same hook only enriches (and scrubs) them.
    before_send = before_send_factory(enrichers, secrets=secrets)
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

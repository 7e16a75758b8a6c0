"""Correlation ids: taken from Kong, else from the client, else generated; echoed back.

Kong's correlation-id plugin sets `Kong-Request-ID`; direct callers may send `X-Request-ID`.
The id lives in a context variable so log lines and Sentry events of the request carry it.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

INCOMING_HEADERS = ("kong-request-id", "x-request-id")
RESPONSE_HEADER = "X-Request-ID"

# An id is echoed into headers and logs: accept only short, printable tokens.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:@#/+=-]{1,128}$")

_correlation_id: ContextVar[str | None] = ContextVar("indexforge_correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def pick_correlation_id(headers: dict[str, str]) -> tuple[str, str | None]:
    """Return (id, header it came from). Invalid or missing ids are replaced by a new uuid4."""
    for name in INCOMING_HEADERS:
        value = headers.get(name)
        if value and _VALID_ID.match(value):
            return value, name
    return uuid.uuid4().hex, None


class CorrelationIdMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would run the app in another task
    and the context variable would not reach the endpoint)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cid, source = pick_correlation_id(headers)
        token = _correlation_id.set(cid)
        scope.setdefault("state", {})["correlation_id"] = cid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out[RESPONSE_HEADER] = cid
                if source == "kong-request-id":
                    out["Kong-Request-ID"] = cid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _correlation_id.reset(token)

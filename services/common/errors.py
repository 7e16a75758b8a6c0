"""Every error is JSON `{"error": "<message>", "code": "<code>", "correlation_id": ...}`;
bad input is a 4xx, never a 500.

`code` is stable (clients branch on it); `error` is a human sentence that never carries
exception text, internal hostnames or URLs: those go to the log and Sentry, found by the
correlation id. The `error` key is also what Weaviate's vectorizer client reads from a failed
`/vectors` call, so its log shows our message. Validation details never echo the input back
(it may be a 100k-character text).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sentry_sdk
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .correlation import current_correlation_id

log = logging.getLogger(__name__)


# The code of an error raised without one, by HTTP status.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
    504: "timeout",
}


def code_for_status(status: int) -> str:
    return STATUS_CODES.get(status, "client_error" if status < 500 else "server_error")


class ServiceError(HTTPException):
    """An HTTP error with its stable `code` (default: derived from the status)."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, message, headers=headers)
        self.code = code or code_for_status(status_code)


def error_body(message: str, *, code: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if code is not None:
        body["code"] = code
    body.update(extra)
    cid = current_correlation_id()
    if cid:
        body["correlation_id"] = cid
    return body


def describe_validation_errors(errors: Sequence[Any]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line summary plus details without the offending input."""
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        details.append({"loc": loc, "msg": str(err.get("msg", "")), "type": err.get("type", "")})
    if not details:
        return "invalid request", details
    first = details[0]
    where = ".".join(first["loc"]) or "request"
    if first["type"] == "json_invalid":
        return "request body is not valid JSON", details
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{where}: {first['msg']}{more}", details


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, details = describe_validation_errors(exc.errors())
    if details and details[0]["loc"] == ["body"] and details[0]["type"] == "model_attributes_type":
        # FastAPI parses JSON only when the content type says so (or is absent).
        message = "request body must be a JSON object"
        if "json" not in request.headers.get("content-type", ""):
            message += " sent with Content-Type: application/json"
    body = error_body(message, code="invalid_request", detail=details)
    return JSONResponse(body, status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    code = getattr(exc, "code", None) or code_for_status(exc.status_code)
    return JSONResponse(
        error_body(message, code=code), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """A JSON response from a pure ASGI middleware (before or instead of the app)."""
    response = JSONResponse(body, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class UnhandledErrorMiddleware:
    """Turn an unhandled exception into a JSON 500 and report it to Sentry once.

    Handling it here (instead of letting it reach the server) keeps the response shape
    uniform and lets in-process test clients see the 500 instead of an exception.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def track(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, track)
        except Exception as exc:
            sentry_sdk.capture_exception(exc)
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:  # too late for a clean response; the server closes the connection
                raise
            await send_json(send, 500, error_body("internal error", code="internal_error"))


class BodyGuardMiddleware:
    """Reject oversized bodies (413) and non-UTF-8 JSON bodies (400) before parsing.

    The body is buffered (it is bounded by the limit) and replayed to the app. `path_limits`
    raises (or lowers) the limit for exact paths: upload routes take files far larger than
    the JSON bodies every other route accepts. Bodies of `stream_paths` are not buffered
    (the route streams them to disk): they are counted as the route reads them, and the read
    that goes over the limit raises a 413 `ServiceError` there.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        path_limits: Mapping[str, int] | None = None,
        stream_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})
        self.stream_paths = frozenset(stream_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        too_large = error_body(f"body exceeds {limit} bytes", code="too_large")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await send_json(send, 413, too_large)
            return
        if scope["path"] in self.stream_paths:
            await self.app(scope, _counted(receive, limit), send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if "json" in headers.get("content-type", "json"):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                message_ = f"request body is not valid UTF-8 (byte {exc.start})"
                await send_json(send, 400, error_body(message_, code="invalid_encoding"))
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _counted(receive: Receive, limit: int) -> Receive:
    """`receive` that raises 413 once the body read so far is over `limit` bytes."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > limit:
            raise ServiceError(413, f"body exceeds {limit} bytes", code="too_large")
        return message

    return counted

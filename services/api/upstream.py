"""HTTP calls to our own services (Excel processor, ML service): retries and a breaker.

Transport errors and 502/503/504 are retried with a short exponential backoff (tenacity);
consecutive failed calls open a circuit breaker, after which calls fail at once with a clear
message until one probe is let through. A 4xx is the upstream's verdict on the input: it is
returned to the caller, never retried. Outgoing calls carry the correlation id and the
gateway token (the services behind the API check it like Kong's); the trace context is
injected by the httpx instrumentation when tracing is on.

Messages of these exceptions are for the log: they name the upstream's failure in detail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..common.breaker import CircuitBreaker
from ..common.correlation import current_correlation_id
from ..common.gateway_auth import HEADER as GATEWAY_TOKEN_HEADER
from ..common.tracing import outgoing_headers

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({502, 503, 504})


class UpstreamUnavailable(Exception):
    """The upstream could not be reached (after retries) or its breaker is open."""


class UpstreamRejected(Exception):
    """The upstream answered 4xx: the input is bad. Carries its status and message."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _message(response: httpx.Response) -> tuple[str, str | None]:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}", None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        reason = body.get("reason")
        return body["error"], reason if isinstance(reason, str) else None
    return f"HTTP {response.status_code}", None


class Upstream:
    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout: float,
        attempts: int,
        breaker_threshold: int,
        breaker_reset_seconds: float,
        token: Callable[[], str | None] | None = None,
    ) -> None:
        self.name = name
        self._token = token  # the current gateway token (the file may be rotated)
        self.base_url = base_url
        self.attempts = attempts
        self.breaker = CircuitBreaker(
            failure_threshold=breaker_threshold, reset_seconds=breaker_reset_seconds
        )
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(timeout, connect=min(5.0, timeout))
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A 2xx response, or UpstreamRejected (4xx) / UpstreamUnavailable (everything else)."""
        if not self.breaker.allow():
            raise UpstreamUnavailable(
                f"{self.name} is unavailable (circuit open after repeated failures)"
            )
        extra = {"X-Request-ID": cid} if (cid := current_correlation_id()) else {}
        if self._token is not None and (token := self._token()):
            extra[GATEWAY_TOKEN_HEADER] = token
        headers = outgoing_headers(extra)
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=0.2, max=2.0),
                retry=retry_if_exception_type((httpx.TransportError, _Retryable)),
                reraise=True,
            ):
                with attempt:
                    response = await self._http.request(method, path, headers=headers, **kwargs)
                    if response.status_code in RETRY_STATUSES:
                        raise _Retryable(response)
        except httpx.TransportError as exc:
            self.breaker.record_failure()
            raise UpstreamUnavailable(
                f"{self.name} unreachable after {self.attempts} attempts "
                f"({type(exc).__name__}: {exc or 'no detail'})"
            ) from exc
        except _Retryable as exc:
            self.breaker.record_failure()
            message, _ = _message(exc.response)
            raise UpstreamUnavailable(
                f"{self.name} answered {exc.response.status_code} after {self.attempts} "
                f"attempts: {message}"
            ) from exc
        if response.status_code >= 500:
            self.breaker.record_failure()
            message, _ = _message(response)
            raise UpstreamUnavailable(f"{self.name} failed ({response.status_code}): {message}")
        self.breaker.record_success()
        if response.status_code >= 400:
            message, reason = _message(response)
            raise UpstreamRejected(response.status_code, message, reason)
        return response

    async def healthy(self) -> bool:
        try:
            response = await self._http.get("/healthz", timeout=1.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def close(self) -> None:
        await self._http.aclose()

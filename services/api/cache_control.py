"""`Cache-Control` of every API response: what Kong's proxy-cache may keep, and for how long.

Kong's proxy-cache honours `Cache-Control` (`cache_control: true`) but cannot be told to
purge, so anything it keeps may be served stale until it expires. Hence:

- every response is `no-store` unless its route declares the `shared` policy: job status,
  document reads and lists, every non-GET, every error (a cached 404 for a document that is
  being ingested would hide it) and anything added later without thought;
- `shared` routes (search) send `public, max-age=N` on a 200, N being
  `INDEXFORGE_GATEWAY_CACHE_MAX_AGE_SECONDS`: the bound on how long a search through the
  gateway may miss an upload or still show a deleted document (0 turns it off: no-store).

Routes declare a policy with a dependency (`SharedCache`); one middleware writes the header,
so no route sets it by hand.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = "no-store"
Policy = Literal["private", "shared"]
_STATE_KEY = "cache_policy"


def _declare(policy: Policy) -> Any:
    def declare(request: Request) -> None:
        request.state.cache_policy = policy

    return Depends(declare)


# Route (or router) dependencies.
SharedCache = _declare("shared")
NoStore = _declare("private")


def header_value(*, method: str, status: int, policy: Policy | None, max_age: int) -> str:
    """The Cache-Control of one response (pure: the whole policy in one place)."""
    if policy == "shared" and method in ("GET", "HEAD") and status == 200 and max_age > 0:
        return f"public, max-age={max_age}"
    return NO_STORE


class CacheControlMiddleware:
    """Pure ASGI: sets the header on the way out, after the route ran and declared."""

    def __init__(self, app: ASGIApp, *, max_age: int) -> None:
        self.app = app
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        state = scope.setdefault("state", {})  # the dict routes declare their policy in

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                policy: Policy | None = state.get(_STATE_KEY)
                headers = MutableHeaders(scope=message)
                headers["Cache-Control"] = header_value(
                    method=scope["method"],
                    status=int(message["status"]),
                    policy=policy,
                    max_age=self.max_age,
                )
            await send(message)

        await self.app(scope, receive, with_header)

"""The authenticated gateway -> service hop: a shared token in `X-IndexForge-Gateway-Token`.

NetworkPolicies are not enforced by every CNI, so a service behind Kong does not rely on
them alone: Kong (and the API, for its calls to ML and Excel) adds a per-instance secret
header, and the service refuses requests without a valid one (401). The accepted tokens
come from `INDEXFORGE_GATEWAY_TOKENS` and/or the file `INDEXFORGE_GATEWAY_TOKENS_FILE`
(a Secret volume, re-read when it changes), so a rotation lists old and new together.

Probes and scrapes carry no token (`/healthz`, `/readyz`, `/metrics`), nor does Weaviate's
text2vec-transformers client, which cannot add custom headers: those paths are exempt and
stay protected by NetworkPolicy only. With no token configured nothing is checked (local
development, `make stack-up`).

The middleware records in the ASGI scope whether the hop was authenticated; only then does
the API trust `X-Consumer-Username` (Kong's word about who the caller is).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_body, send_json
from .settings import ServiceSettings, split_tokens

log = logging.getLogger(__name__)

HEADER = "X-IndexForge-Gateway-Token"
_HEADER_KEY = HEADER.lower().encode("latin-1")
ALWAYS_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
# How often the token file's mtime is looked at, at most (a Secret volume changes rarely).
RECHECK_SECONDS = 2.0
HopState = Literal["unconfigured", "authenticated", "unauthenticated"]
_STATE_KEY = "gateway_hop"


class GatewayTokens:
    """The accepted tokens: the variable's plus the file's, the file re-read on change.

    Fails closed: a configured file that is missing or empty accepts nothing (and says so
    in the log) rather than silently turning the check off.
    """

    def __init__(
        self,
        *,
        static: Sequence[str] = (),
        file: Path | None = None,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static = tuple(static)
        self._file = file
        self._recheck = recheck_seconds
        self._clock = clock
        self._checked_at: float | None = None
        self._signature: tuple[int, int, int] | None = None
        self._problem: str | None = None
        self._tokens: tuple[str, ...] = self._static
        self._bytes: tuple[bytes, ...] = tuple(t.encode() for t in self._static)
        self._refresh()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> GatewayTokens:
        raw = settings.gateway_tokens.get_secret_value() if settings.gateway_tokens else ""
        return cls(static=split_tokens(raw), file=settings.gateway_tokens_file)

    @property
    def configured(self) -> bool:
        return bool(self._static) or self._file is not None

    def current(self) -> tuple[str, ...]:
        """File tokens first (Kong and the API send the first one), then the variable's."""
        self._refresh()
        return self._tokens

    def outgoing(self) -> str | None:
        """The token to send on our own calls to other services."""
        tokens = self.current()
        return tokens[0] if tokens else None

    def accepts(self, presented: bytes) -> bool:
        self._refresh()
        # Compare against every token without stopping early: timing says nothing.
        ok = False
        for token in self._bytes:
            ok |= hmac.compare_digest(presented, token)
        return ok

    def _refresh(self) -> None:
        if self._file is None:
            return
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._recheck:
            return
        self._checked_at = now
        signature: tuple[int, int, int] | None
        try:
            # Kubernetes swaps a Secret volume's files by symlink: stat follows it.
            st = os.stat(self._file)
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            if signature == self._signature:
                return
            tokens = tuple(split_tokens(self._file.read_text(encoding="utf-8")))
        except OSError as exc:
            signature, tokens = None, ()
            problem: str | None = f"is unreadable ({exc.strerror})"
        else:
            problem = None if tokens else "holds no token"
        if problem is None:
            log.info("gateway tokens loaded from %s (%d accepted)", self._file, len(tokens))
        elif problem != self._problem:  # once per change, not every recheck
            log.error("gateway token file %s %s: no token of it is accepted", self._file, problem)
        self._problem = problem
        self._signature = signature
        self._tokens = (*tokens, *(t for t in self._static if t not in tokens))
        self._bytes = tuple(t.encode() for t in self._tokens)


def hop_state(scope: Scope) -> HopState:
    state: HopState = scope.get("state", {}).get(_STATE_KEY, "unconfigured")
    return state


def hop_trusted(scope: Scope) -> bool:
    """May headers set by the gateway (consumer identity) be believed for this request?"""
    return hop_state(scope) != "unauthenticated"


def rejected_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "indexforge_gateway_auth_rejected",
        "Requests refused for a missing or invalid gateway token.",
        ["reason"],
        registry=registry,
    )


class GatewayAuthMiddleware:
    """Pure ASGI: checks the header before the body is read, so refusing costs nothing."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: GatewayTokens,
        required: bool,
        rejected: Counter,
        exempt: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.required = required
        self.rejected = rejected
        self.exempt = ALWAYS_EXEMPT | frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens.configured:
            await self.app(scope, receive, send)
            return
        presented = next((v for k, v in scope["headers"] if k == _HEADER_KEY), None)
        valid = presented is not None and self.tokens.accepts(presented)
        scope.setdefault("state", {})[_STATE_KEY] = "authenticated" if valid else "unauthenticated"
        if valid or not self.required or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        self.rejected.labels("missing" if presented is None else "invalid").inc()
        body = error_body("missing or invalid gateway token", code="gateway_token_invalid")
        await send_json(send, 401, body)

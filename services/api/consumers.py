"""Per-consumer request counters: a fixed window in the app Redis, mirrored as metrics.

Kong's key-auth/ACL plugins name the authenticated consumer in `X-Consumer-Username` (or
`X-Consumer-ID`); direct callers count as `anonymous`. Anyone can set those headers, so with
gateway tokens configured they are believed only on a request that carried a valid token
(it came through Kong); without tokens (local development) they are taken as they come.
The window count lives in Redis so it covers every API replica. Counting is best effort:
it never fails or slows a request for long (its own breaker skips a dead Redis), and the
label set is capped so a flood of made-up consumer names cannot blow up the metrics.
"""

from __future__ import annotations

import logging
import re
import time

from fastapi import Request
from redis.asyncio import Redis

from ..common.breaker import CircuitBreaker
from ..common.cache import REDIS_ERRORS
from ..common.gateway_auth import hop_trusted
from .metrics import ApiMetrics

log = logging.getLogger(__name__)

CONSUMER_HEADERS = ("x-consumer-username", "x-consumer-id")
ANONYMOUS = "anonymous"
OTHER = "other"
_VALID = re.compile(r"^[A-Za-z0-9._@:-]{1,64}$")


def consumer_of(request: Request) -> str:
    if not hop_trusted(request.scope):
        return ANONYMOUS
    for header in CONSUMER_HEADERS:
        value = request.headers.get(header)
        if value and _VALID.match(value):
            return value
    return ANONYMOUS


class ConsumerCounter:
    def __init__(
        self,
        redis: Redis | None,
        metrics: ApiMetrics,
        *,
        namespace: str,
        window_seconds: int,
        max_consumers: int = 500,
    ) -> None:
        self.redis = redis
        self.metrics = metrics
        self.namespace = namespace
        self.window = window_seconds
        self.max_consumers = max_consumers
        self._known: set[str] = set()
        self.breaker = CircuitBreaker(failure_threshold=3, reset_seconds=10.0)

    def label(self, consumer: str) -> str:
        if consumer in self._known:
            return consumer
        if len(self._known) >= self.max_consumers:
            return OTHER
        self._known.add(consumer)
        return consumer

    def window_key(self, consumer: str, now: float | None = None) -> str:
        start = int((now if now is not None else time.time()) // self.window) * self.window
        return f"{self.namespace}:rl:{consumer}:{start}"

    async def count(self, consumer: str) -> int | None:
        """Count one request; returns the window total, or None when Redis is not usable."""
        label = self.label(consumer)
        self.metrics.consumer_requests.labels(label).inc()
        if self.redis is None or not self.breaker.allow():
            return None
        key = self.window_key(consumer)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window + 60, nx=True)
                total, _ = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.breaker.record_failure()
            log.debug("consumer counter skipped: %s", exc)
            return None
        self.breaker.record_success()
        self.metrics.consumer_window.labels(label).set(int(total))
        return int(total)

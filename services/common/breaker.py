"""A small circuit breaker for a dependency that may die (the cache Redis).

closed --(threshold consecutive failures)--> open --(reset_seconds)--> half-open
half-open lets exactly one probe through: success closes, failure re-opens.
While open, callers skip the dependency at once instead of paying retries and timeouts.
The clock is injected so transitions are testable without sleeping.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """May the caller use the dependency now? (An open breaker may turn half-open.)"""
        now = self._clock()
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self.reset_seconds:
                return False
            self._set(BreakerState.HALF_OPEN)
        # Half-open: one probe at a time. A probe that never reported (its caller was
        # cancelled) must not wedge the breaker, so a new one is allowed after reset_seconds.
        if self._probe_started is None or now - self._probe_started >= self.reset_seconds:
            self._probe_started = now
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._probe_started = None
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._probe_started = None
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)

    def _set(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if old is not new and self._on_change is not None:
            self._on_change(old, new)

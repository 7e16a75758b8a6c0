"""What a worker does after a failed attempt: a pure decision, returning (action, delay).

Only failures of our infrastructure are retried (an upstream down, Weaviate down, the
broker not confirming a job's outcome, a bug that may be a race); a verdict on the input
(`rejected`, a workbook the Excel processor refuses) fails the job at once, since no retry
can change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RETRYABLE = frozenset(
    {
        "excel_unavailable",
        "ml_unavailable",
        "weaviate_unavailable",
        "redis_unavailable",
        "queue_unavailable",
        "internal",
    }
)


@dataclass(frozen=True)
class Decision:
    action: Literal["retry", "fail", "dead_letter"]
    delay_seconds: float = 0.0
    why: str = ""


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Delay before attempt `attempt + 1`: base, 2 base, 4 base, ... at most cap."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))


def after_failure(
    reason: str, attempt: int, *, max_attempts: int, base: float, cap: float
) -> Decision:
    """`attempt` is 1-based: the attempt that just failed."""
    if reason not in RETRYABLE:
        return Decision("fail", why=f"{reason} is not retryable")
    if attempt >= max_attempts:
        # Poison or a long outage: the job fails and the message is kept for a person.
        return Decision("dead_letter", why=f"{reason} after {attempt} attempts")
    return Decision("retry", backoff(attempt, base=base, cap=cap), f"{reason}, attempt {attempt}")

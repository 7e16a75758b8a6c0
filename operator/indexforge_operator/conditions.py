"""Status conditions as pure functions (Kubernetes API conventions).

``lastTransitionTime`` changes only when a condition's status flips, so watchers can trust it;
reason and message may change freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    type: str
    status: Status
    reason: str
    message: str


def merge_conditions(
    previous: list[dict[str, Any]],
    current: list[Condition],
    *,
    now: str,
    generation: int,
) -> list[dict[str, Any]]:
    """The new condition list: one entry per current condition, times kept unless flipped."""
    before = {c.get("type"): c for c in previous}
    merged: list[dict[str, Any]] = []
    for cond in current:
        old = before.get(cond.type)
        flipped = old is None or old.get("status") != cond.status
        merged.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason,
                "message": cond.message,
                "observedGeneration": generation,
                "lastTransitionTime": now if flipped else old.get("lastTransitionTime", now),  # type: ignore[union-attr]
            }
        )
    return merged


def flips(previous: list[dict[str, Any]], merged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions whose status changed: the transitions worth an Event."""
    before = {c.get("type"): c.get("status") for c in previous}
    return [c for c in merged if before.get(c["type"]) != c["status"]]

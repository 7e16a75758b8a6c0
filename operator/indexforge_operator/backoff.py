"""Per-CR retry timing: exponential backoff after failed passes, reset by a clean one."""

from __future__ import annotations

from dataclasses import dataclass, field

Key = tuple[str, str]  # namespace, name


@dataclass
class Backoff:
    """2 s, 4 s, 8 s ... capped (5 min by default): a broken CR costs a few requests an hour,
    not one every couple of seconds, and a fixed one recovers at its next event."""

    base: float = 2.0
    cap: float = 300.0
    _failures: dict[Key, int] = field(default_factory=dict)

    def failed(self, key: Key) -> float:
        """Record a failure; returns the delay before the next attempt."""
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        return float(min(self.cap, self.base * (2**count)))

    def succeeded(self, key: Key) -> None:
        self._failures.pop(key, None)

    def failures(self, key: Key) -> int:
        return self._failures.get(key, 0)

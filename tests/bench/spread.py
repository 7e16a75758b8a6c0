"""Repetitions, interleaved: each round runs every mode once, so a noisy neighbour on the
shared machine slows all modes of that round rather than one mode's whole series.
Figures are min/median/max over the rounds; ratios are of medians from the same run."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class Spread:
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def cell(self) -> str:
        """`median (min..max)`."""
        return f"{self.median:8.1f} ({min(self.values):.1f}..{max(self.values):.1f})"

    def as_dict(self, digits: int = 1) -> dict[str, float]:
        return {
            "min": round(min(self.values), digits),
            "median": round(self.median, digits),
            "max": round(max(self.values), digits),
        }


def interleaved(modes: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, Spread]:
    """Run every mode once per round, in the same order, `rounds` times."""
    results = {name: Spread() for name in modes}
    for _ in range(rounds):
        for name, run in modes.items():
            results[name].values.append(run())
    return results


def ratio(a: Spread, b: Spread) -> float:
    return round(a.median / b.median, 3) if b.median else float("nan")

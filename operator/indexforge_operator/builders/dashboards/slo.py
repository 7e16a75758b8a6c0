"""SLOs: objectives, error ratios, burn rates (1h, 6h) and the error budget left over the
longest recorded window (3d), from the SLO recording rules (indexforge_operator.slo)."""

from __future__ import annotations

from ...slo import ERROR_RATIO, OBJECTIVE, SLO_LABEL
from ...telemetry import INSTANCE_LABEL, NAMESPACE_LABEL, Scope, matcher
from .panels import Obj, Query, stat, timeseries

TITLE = "SLOs"
LEGEND = "{{slo}} {{component}}"
ON = f"on ({NAMESPACE_LABEL}, {INSTANCE_LABEL}, {SLO_LABEL}) group_left ()"


def panels(scope: Scope) -> list[Obj]:
    sel = matcher(scope)
    budget = f"(1 - {OBJECTIVE}{sel})"

    def burn(window: str) -> str:
        return f"{ERROR_RATIO}{window}{sel} / {ON} {budget}"

    return [
        stat("Objectives", [Query(f"{OBJECTIVE}{sel}", "{{slo}}")], unit="percentunit"),
        stat(
            "Error budget left (3d)",
            [Query(f"1 - ({burn('3d')})", LEGEND)],
            unit="percentunit",
        ),
        timeseries("Burn rate (1h)", [Query(burn("1h"), LEGEND)], unit="short"),
        timeseries("Burn rate (6h)", [Query(burn("6h"), LEGEND)], unit="short"),
        timeseries(
            "Error ratio (5m)", [Query(f"{ERROR_RATIO}5m{sel}", LEGEND)], unit="percentunit"
        ),
        timeseries(
            "Error ratio (1d)", [Query(f"{ERROR_RATIO}1d{sel}", LEGEND)], unit="percentunit"
        ),
    ]

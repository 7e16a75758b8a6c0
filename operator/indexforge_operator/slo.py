"""SLO recording rules and multi-window multi-burn-rate alerts (Google SRE workbook, ch. 5).

Per SLI, the error ratio (bad / all requests) is recorded over 5m..3d as
`indexforge:slo_errors:ratio_rate<window>` with an `slo` label, and the objective as
`indexforge:slo_objective:ratio`, so the SLO dashboard reads objectives, burn rates and the
remaining budget without knowing the spec. Alerts compare the recorded ratios against
`factor * (1 - objective)`: a page when both the long and the short window burn at 14.4x (1h,
5m) or 6x (6h, 30m), a ticket at 3x (1d, 2h) or 1x (3d, 6h). The short window makes an alert
stop soon after the burn stops.

The static chart gets these groups generated (hack/charts.py writes them with placeholders for
namespace, release, objectives and runbook base), so the rules have one source here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from .spec_slo import SloSpec
from .telemetry import (
    COMPONENT_LABEL,
    GROUP_BY,
    HTTP_COMPONENTS,
    HTTP_LATENCY_BUCKET,
    HTTP_LATENCY_COUNT,
    HTTP_REQUESTS,
    INSTANCE_LABEL,
    KONG_LATENCY_BUCKET,
    KONG_LATENCY_COUNT,
    KONG_REQUESTS,
    NAMESPACE_LABEL,
    Scope,
    matcher,
)

Family = Literal["services", "gateway"]
Kind = Literal["availability", "latency"]
FAMILIES: Final[tuple[Family, ...]] = ("services", "gateway")
KINDS: Final[tuple[Kind, ...]] = ("availability", "latency")
WINDOWS: Final = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
ERROR_RATIO: Final = "indexforge:slo_errors:ratio_rate"  # + window
OBJECTIVE: Final = "indexforge:slo_objective:ratio"
SLO_LABEL: Final = "slo"
ALERT_NAMES: Final[dict[Kind, str]] = {
    "availability": "IndexForgeAvailabilityBudgetBurn",
    "latency": "IndexForgeLatencyBudgetBurn",
}
# The latency thresholds are histogram bucket boundaries (see spec_slo.py). Kong prints "50",
# Prometheus 3 normalises bucket labels to "50.0": match both.
SERVICE_LATENCY_LE: Final = r"0\\.2"
GATEWAY_LATENCY_LE: Final = r"50(\\.0)?"


@dataclass(frozen=True)
class Burn:
    long: str
    short: str
    factor: str


# (severity, burns): each burn fires when both of its windows exceed factor x the budget.
BURNS: Final[tuple[tuple[str, tuple[Burn, ...]], ...]] = (
    ("critical", (Burn("1h", "5m", "14.4"), Burn("6h", "30m", "6"))),
    ("warning", (Burn("1d", "2h", "3"), Burn("3d", "6h", "1"))),
)


def slo_name(family: Family, kind: Kind) -> str:
    return f"{family}-{kind}"


def _ratio(bad: str, total: str, window: str) -> str:
    """bad/total per component; `or ... * 0` keeps a 0 where no bad series exists yet."""
    by = f"sum by ({GROUP_BY})"
    return (
        f"(\n  {by} (rate({bad}[{window}]))\n  or {by} (rate({total}[{window}])) * 0\n)\n"
        f"/ {by} (rate({total}[{window}]))"
    )


def _slow(fast_bucket: str, count: str, window: str) -> str:
    by = f"sum by ({GROUP_BY})"
    return f"1 - (\n  {by} (rate({fast_bucket}[{window}]))\n  / {by} (rate({count}[{window}]))\n)"


def error_ratio(scope: Scope, family: Family, kind: Kind, window: str) -> str:
    """PromQL of one SLI's error ratio over `window`."""
    if family == "services":
        comp = {COMPONENT_LABEL: "|".join(HTTP_COMPONENTS)}
        if kind == "availability":
            bad = HTTP_REQUESTS + matcher(scope, **comp, status="5..")
            return _ratio(bad, HTTP_REQUESTS + matcher(scope, **comp), window)
        fast = HTTP_LATENCY_BUCKET + matcher(scope, **comp, le=SERVICE_LATENCY_LE)
        return _slow(fast, HTTP_LATENCY_COUNT + matcher(scope, **comp), window)
    gw = {COMPONENT_LABEL: "gateway"}
    if kind == "availability":
        bad = KONG_REQUESTS + matcher(scope, **gw, code="5..")
        return _ratio(bad, KONG_REQUESTS + matcher(scope, **gw), window)
    fast = KONG_LATENCY_BUCKET + matcher(scope, **gw, le=GATEWAY_LATENCY_LE)
    return _slow(fast, KONG_LATENCY_COUNT + matcher(scope, **gw), window)


def _alert(scope: Scope, family: Family, kind: Kind, severity: str, burns: tuple[Burn, ...],
           objective: str, runbook_base: str) -> dict[str, Any]:  # fmt: skip
    sel = matcher(scope, **{SLO_LABEL: slo_name(family, kind)})
    budget = f"(1 - {objective})"
    expr = "\nor\n".join(
        f"(\n  {ERROR_RATIO}{b.long}{sel} > ({b.factor} * {budget})\n"
        f"  and\n  {ERROR_RATIO}{b.short}{sel} > ({b.factor} * {budget})\n)"
        for b in burns
    )
    rates = " or ".join(f"{b.factor}x ({b.long} and {b.short})" for b in burns)
    name = ALERT_NAMES[kind]
    return {
        "alert": name,
        "expr": expr,
        # namespace: see alerts.rule_groups (AlertmanagerConfig routes by namespace).
        "labels": {"severity": severity, "namespace": scope.namespace},
        "annotations": {
            "summary": f"{{{{ $labels.component }}}} burns its {kind} error budget "
            + ("fast" if severity == "critical" else "steadily"),
            "description": f"The {kind} SLO {slo_name(family, kind)} of "
            f"{{{{ $labels.component }}}} loses its error budget at {rates} the rate "
            "that would use it up exactly over the SLO period.",
            "runbook_url": f"{runbook_base}/{name}.md",
        },
    }


def family_rules(
    scope: Scope,
    family: Family,
    *,
    objectives: dict[Kind, str],
    runbook_base: str,
) -> dict[str, Any]:
    """One family's group name, recording rules and alerts (the chart joins them the same way)."""
    records: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for kind in KINDS:
        slo = slo_name(family, kind)
        records += [
            {
                "record": ERROR_RATIO + window,
                "expr": error_ratio(scope, family, kind, window),
                "labels": {SLO_LABEL: slo},
            }
            for window in WINDOWS
        ]
        records.append(
            {
                "record": OBJECTIVE,
                "expr": f"vector({objectives[kind]})",
                "labels": {
                    NAMESPACE_LABEL: scope.namespace,
                    INSTANCE_LABEL: scope.instance,
                    SLO_LABEL: slo,
                },
            }
        )
        alerts += [
            _alert(scope, family, kind, severity, burns, objectives[kind], runbook_base)
            for severity, burns in BURNS
        ]
    return {
        "name": f"indexforge.{scope.namespace}.{scope.instance}.slo-{family}",
        "records": records,
        "alerts": alerts,
    }


def ratio(percent: float) -> str:
    """99.9 -> "0.999": shortest exact decimal (the chart's indexforge.decimal gives the same)."""
    return format((Decimal(str(percent)) / 100).normalize(), "f")


def slo_groups(
    slo: SloSpec, scope: Scope, *, gateway: bool, alerts: bool, runbook_base: str
) -> list[dict[str, Any]]:
    """Rule groups of the enabled SLO families (recording rules, plus alerts when on)."""
    out = []
    for family in FAMILIES:
        if family == "gateway" and not gateway:
            continue
        obj = slo.services if family == "services" else slo.gateway
        rules = family_rules(
            scope,
            family,
            objectives={
                "availability": ratio(obj.availability_percent),
                "latency": ratio(obj.latency_percent),
            },
            runbook_base=runbook_base,
        )
        out.append(
            {"name": rules["name"], "rules": rules["records"] + (rules["alerts"] if alerts else [])}
        )
    return out

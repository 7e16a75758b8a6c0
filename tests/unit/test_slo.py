"""SLO recording rules and burn-rate alerts, evaluated by the real `promtool test rules`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexforge_operator.alerts import rule_file
from indexforge_operator.slo import ALERT_NAMES, ERROR_RATIO, OBJECTIVE, ratio

from .support import NAMES, make_spec
from .test_alerts import LABELS, PROMTOOL, needs_promtool

MINUTES = 200  # samples per series, one a minute: enough for the 1h and 6h windows' rates


def _series(metric: str, per_min: int, **labels: str) -> dict[str, str]:
    text = ",".join(f'{k}="{v}"' for k, v in sorted({**LABELS, **labels}.items()))
    return {"series": f"{metric}{{{text}}}", "values": f"0+{per_min}x{MINUTES}"}


def _requests(bad: int, good: int, *, gateway: bool = False) -> list[dict[str, str]]:
    if gateway:
        return [
            _series("kong_http_requests_total", n, component="gateway", code=code,
                    service="api", route="r", source="service", consumer="")
            for code, n in (("502", bad), ("200", good))
            if n
        ]  # fmt: skip
    return [
        _series("http_requests_total", n, component="api", status=status, method="GET",
                route="/x")
        for status, n in (("500", bad), ("200", good))
        if n
    ]  # fmt: skip


def _latency(fast: int, total: int, *, gateway: bool = False, le: str = "50") -> list[Any]:
    """`total` requests a minute, `fast` of them under the SLO's threshold."""
    if gateway:
        labels = {"component": "gateway", "service": "api", "route": "r"}
        return [
            _series("kong_request_latency_ms_bucket", fast, le=le, **labels),
            _series("kong_request_latency_ms_bucket", total, le="+Inf", **labels),
            _series("kong_request_latency_ms_count", total, **labels),
        ]
    labels = {"component": "api", "method": "GET", "route": "/x", "status": "200"}
    return [
        _series("http_request_duration_seconds_bucket", fast, le="0.2", **labels),
        _series("http_request_duration_seconds_bucket", total, le="+Inf", **labels),
        _series("http_request_duration_seconds_count", total, **labels),
    ]


def _alert(raw: dict[str, Any], kind: str, slo: str, severity: str, component: str) -> Any:
    groups = rule_file(make_spec(raw), NAMES)["groups"]
    rule = next(
        r
        for g in groups
        for r in g["rules"]
        if r.get("alert") == ALERT_NAMES[kind]  # type: ignore[index]
        and r["labels"]["severity"] == severity
        and f'slo=~"{slo}"' in r["expr"]
    )
    annotations = {
        k: v.replace("{{ $labels.component }}", component) for k, v in rule["annotations"].items()
    }
    labels = {**LABELS, "component": component, "slo": slo, **rule["labels"]}
    return {"exp_labels": labels, "exp_annotations": annotations}


def _promtool(tmp_path: Path, raw: dict[str, Any], tests: list[dict[str, Any]]) -> None:
    assert PROMTOOL is not None
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_file(make_spec(raw), NAMES)))
    suite = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _case(series: list[Any], alertname: str, expected: list[Any], at: str = "70m") -> Any:
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": at, "alertname": alertname, "exp_alerts": expected}],
    }


# (id, spec, series, kind, slo, component, severities expected at 70m)
CASES: list[tuple[str, dict[str, Any], list[Any], str, str, str, list[str]]] = [
    # 2 % errors: 20x a 0.1 % budget; every window above 14.4x, 6x, 3x and 1x.
    ("availability-burn", {}, _requests(2, 98), "availability", "services-availability", "api",
     ["critical", "warning"]),
    # 0.05 % errors: half the budget, nothing fires.
    ("availability-healthy", {}, _requests(1, 1999), "availability", "services-availability",
     "api", []),
    # 0.5 % errors: 5x the budget; above 3x (ticket), under 6x (no page).
    ("availability-slow-burn", {}, _requests(1, 199), "availability", "services-availability",
     "api", ["warning"]),
    # The same 2 % against a 95 % objective: 0.4x, nothing.
    ("availability-objective-from-spec",
     {"monitoring": {"slo": {"services": {"availabilityPercent": 95}}}}, _requests(2, 98),
     "availability", "services-availability", "api", []),
    ("no-errors-at-all", {}, _requests(0, 100), "availability", "services-availability", "api",
     []),
    # 80 % slower than 200 ms: 16x a 5 % budget.
    ("latency-burn", {}, _latency(20, 100), "latency", "services-latency", "api",
     ["critical", "warning"]),
    ("latency-healthy", {}, _latency(98, 100), "latency", "services-latency", "api", []),
    ("gateway-availability-burn", {}, _requests(3, 97, gateway=True), "availability",
     "gateway-availability", "gateway", ["critical", "warning"]),
    ("gateway-latency-burn", {}, _latency(10, 100, gateway=True), "latency", "gateway-latency",
     "gateway", ["critical", "warning"]),
    # Prometheus 3 normalises bucket labels ("50" -> "50.0"): the SLI matches both.
    ("gateway-latency-burn-normalised-le", {}, _latency(10, 100, gateway=True, le="50.0"),
     "latency", "gateway-latency", "gateway", ["critical", "warning"]),
    ("gateway-latency-healthy", {}, _latency(99, 100, gateway=True), "latency",
     "gateway-latency", "gateway", []),
]  # fmt: skip


@needs_promtool
@pytest.mark.parametrize(
    ("raw", "series", "kind", "slo", "component", "severities"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_burn_rate_alerts(
    tmp_path: Path,
    raw: dict[str, Any],
    series: list[Any],
    kind: str,
    slo: str,
    component: str,
    severities: list[str],
) -> None:
    expected = [_alert(raw, kind, slo, s, component) for s in severities]
    _promtool(tmp_path, raw, [_case(series, ALERT_NAMES[kind], expected)])  # type: ignore[index]


@needs_promtool
def test_page_stops_soon_after_the_burn_stops(tmp_path: Path) -> None:
    """The short windows: 70 minutes of 2 % errors, then none. 35 minutes later the 1h and 6h
    ratios are still high but the 5m and 30m ones are clean, so the page has resolved; the
    1d/2h ticket stays."""
    text = ",".join(f'{k}="{v}"' for k, v in sorted({**LABELS, "component": "api"}.items()))
    series = [
        {"series": f'http_requests_total{{{text},status="500"}}', "values": "0+2x70 140x60"},
        {"series": f'http_requests_total{{{text},status="200"}}', "values": "0+98x130"},
    ]
    warning = _alert({}, "availability", "services-availability", "warning", "api")
    critical = _alert({}, "availability", "services-availability", "critical", "api")
    tests = [
        _case(series, "IndexForgeAvailabilityBudgetBurn", [critical, warning], at="70m"),
        _case(series, "IndexForgeAvailabilityBudgetBurn", [warning], at="105m"),
    ]
    _promtool(tmp_path, {}, tests)


@needs_promtool
def test_recorded_objective_and_zero_error_ratio(tmp_path: Path) -> None:
    """The objective is recorded for the dashboard; no 5xx series at all records 0, not
    nothing (so the SLO dashboard and the budget show a value)."""
    sel = f'{{slo="services-availability",indexforge_instance="{NAMES.instance}"}}'
    labels = {**LABELS, "slo": "services-availability"}
    tests = [
        {
            "interval": "1m",
            "input_series": _requests(0, 100),
            "promql_expr_test": [
                {
                    "expr": OBJECTIVE + sel,
                    "eval_time": "10m",
                    "exp_samples": [{"labels": f"{OBJECTIVE}{_labels(labels)}", "value": 0.999}],
                },
                {
                    "expr": f"{ERROR_RATIO}5m{sel}",
                    "eval_time": "10m",
                    "exp_samples": [
                        {
                            "labels": f"{ERROR_RATIO}5m{_labels({**labels, 'component': 'api'})}",
                            "value": 0,
                        }
                    ],
                },
            ],
        }
    ]
    _promtool(tmp_path, {}, tests)


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def test_objective_text_matches_the_chart_arithmetic() -> None:
    # The chart formats percent/100 with %.10f and trims zeros: the same text as ratio().
    for percent, text in ((99.9, "0.999"), (95, "0.95"), (99.95, "0.9995"), (50, "0.5")):
        assert ratio(percent) == text
        assert f"{percent / 100:.10f}".rstrip("0").rstrip(".") == text


def test_gateway_slo_only_with_the_gateway() -> None:
    names = [g["name"] for g in rule_file(make_spec({"gateway": {"enabled": False}}), NAMES)[
        "groups"
    ]]  # fmt: skip
    assert not [n for n in names if n.endswith("slo-gateway")]
    assert [n for n in names if n.endswith("slo-services")]

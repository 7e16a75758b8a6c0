"""The rendered monitoring stack over the real services: targets, rules, dashboards, alerts.

`make stack-up MONITORING=1 MESSAGING=1` in a temporary state directory: the real API (queue
mode), an ingestion worker, ML and Excel processes, Redis, RabbitMQ, Weaviate and Jaeger,
plus Debian's Prometheus, Alertmanager and redis_exporter running the operator's rendered
prometheus.yml, rule file and alertmanager.yml (addresses rewritten to loopback, nothing
else; `tests/stack/monitoring.py`). Timings are spec fields set fast (`FAST`), the webhook
URL is the spec's `monitoring.alertmanager.webhookUrl` pointing at the stack's receiver.

Traffic: uploads (text, CSV, Excel), searches (misses and cache hits), then Weaviate is
stopped and searches answer 503 — real 5xx from the real API, so IndexForgeHighErrorRate
must fire and arrive at the webhook. Then every series the alert/recording rules read and
every dashboard query must exist in what the services really export.

Not covered here, and why: Kong (no container runtime; the stack spec has no gateway, so no
Kong rule or panel is rendered for it — promtool unit tests and the kind path cover Kong's
queries) and Weaviate's own metrics (`NOT_RUN_HERE`: its listener binds every interface).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from indexforge_operator.builders.alertmanager import CRITICAL
from tests.procs import ProcessBook, pid_alive
from tests.stack import alert_sink, launcher
from tests.stack import monitoring as mon
from tests.waiting import wait_for

from .conftest import wait_job
from .workbooks import products_xlsx

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        None in (mon.PROMETHEUS, mon.ALERTMANAGER, mon.REDIS_EXPORTER),
        reason="needs Debian's prometheus, prometheus-alertmanager and "
        "prometheus-redis-exporter (`make system-deps`)",
    ),
]
FAST: dict[str, Any] = {
    "prometheus": {"scrapeInterval": "1s", "evaluationInterval": "1s"},
    "alerts": {"forDuration": "3s"},
    "alertmanager": {"groupWaitSeconds": 1, "groupIntervalSeconds": 1},
}
DELIVERY_TIMEOUT = 120.0
UNUSED_HOOK = "http://127.0.0.1:9/unused"  # rendering only: nothing is sent
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Grafana's built-in interval variables, as Grafana would substitute them for a 1 h view.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}")
COMPONENT_MATCHER = re.compile(r'component=~?"([^"]*)"')


@dataclass(frozen=True)
class Stack:
    state: Path
    urls: dict[str, Any]

    @property
    def prometheus(self) -> str:
        return str(self.urls["prometheus"])

    @property
    def alerts_file(self) -> Path:
        return Path(self.urls["alerts_file"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("monitored-stack")
    try:
        launcher.up(state, monitoring=True, monitoring_spec=FAST, messaging=True)
        yield Stack(state, launcher.read_state(state)["urls"])
    finally:
        launcher.down(state)


def _stop_weaviate(state: Path) -> None:
    """SIGTERM the stack's Weaviate (by its recorded PID) and wait until it is gone."""
    book = ProcessBook(state)
    pid = book.running()["weaviate"]
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), timeout=30, what="weaviate stopped")


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Stack:
    """What a day of use produces, compressed: every kind of upload, searches that miss and
    hit the cache, then a Weaviate outage under search traffic (503s)."""
    with httpx.Client(base_url=stack.urls["api"], timeout=60) as client:
        uploads = [
            {"file": ("notes.txt", b"Harbour cranes unload containers at dawn.\n", "text/plain")},
            {"file": ("cities.csv", b"city,country\nLyon,France\nOsaka,Japan\n", "text/csv")},
            {"file": ("products.xlsx", products_xlsx(), XLSX)},
        ]  # fmt: skip
        for files in uploads:
            accepted = client.post("/api/v1/documents", files=files)
            assert accepted.status_code == 202, accepted.text
            job = wait_job(client, accepted.json()["job_id"])
            assert job["status"] == "completed", job
        for _ in range(3):  # the first of each misses the cache, the rest hit it
            for q in ("containers at the harbour", "cities in Japan", "products"):
                assert client.get("/api/v1/search", params={"q": q}).status_code == 200
        assert client.get("/api/v1/documents/no-such-document").status_code == 422  # bad id
        _stop_weaviate(stack.state)
        failed = [
            client.get("/api/v1/search", params={"q": f"outage {i}"}).status_code for i in range(30)
        ]
        assert set(failed) == {503}, failed
    # A few scrapes and rule evaluations after the last request.
    time.sleep(4)
    return stack


def _rules() -> list[dict[str, Any]]:
    rendered = mon.rendered(mon.stack_spec(FAST, webhook_url=UNUSED_HOOK, messaging=True))
    return [rule for group in yaml.safe_load(rendered.rules)["groups"] for rule in group["rules"]]


def _dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, expr) of every dashboard the operator provisions."""
    found: list[tuple[str, str, str]] = []
    for obj in mon.rendered_objects(mon.stack_spec(FAST, webhook_url=UNUSED_HOOK, messaging=True)):
        if obj["kind"] != "ConfigMap":
            continue
        for key, text in (obj.get("data") or {}).items():
            if not key.endswith(".json"):
                continue
            board = json.loads(text)
            if "panels" not in board:
                continue
            for panel in _panels(board["panels"]):
                for target in panel.get("targets", []):
                    if target.get("expr"):
                        found.append((board["title"], panel.get("title", ""), target["expr"]))
    return found


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows hold their panels


def _grafana(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def _not_run_here(matchers: str) -> bool:
    """A selector of a component that has no process here (see NOT_RUN_HERE)."""
    match = COMPONENT_MATCHER.search(matchers)
    return match is not None and set(match.group(1).split("|")) <= set(mon.NOT_RUN_HERE)


def _selectors(expr: str) -> list[str]:
    return [
        f"{name}{{{matchers}}}"
        for name, matchers in SELECTOR.findall(expr)
        if not _not_run_here(matchers)
    ]


def test_every_rendered_target_is_up(stack: Stack) -> None:
    config = mon.rendered(mon.stack_spec(FAST, webhook_url=UNUSED_HOOK, messaging=True)).prometheus
    skipped = {mon.NAMES.component(c) for c in mon.NOT_RUN_HERE}
    expected = {job["job_name"] for job in config["scrape_configs"]} - skipped

    def health() -> dict[str, str] | None:
        targets = mon.get_json(f"{stack.prometheus}/api/v1/targets")["data"]["activeTargets"]
        found = {t["labels"]["job"]: t["health"] for t in targets}
        return found if set(found) == expected and set(found.values()) == {"up"} else None

    wait_for(health, timeout=30, what=f"targets {sorted(expected)} all up")
    # The target labels the rules and dashboards select on, from the rendered relabelling.
    up = mon.query(stack.prometheus, 'up{indexforge_instance="stack"}')
    assert {s["metric"]["component"] for s in up} >= {"api", "ml", "excel", "redis-app"}


def test_high_error_rate_from_real_503s_reaches_the_webhook(traffic: Stack) -> None:
    def fired() -> dict[str, Any] | None:
        return alert_sink.firing(traffic.alerts_file).get("IndexForgeHighErrorRate")

    alert = wait_for(fired, timeout=DELIVERY_TIMEOUT, what="IndexForgeHighErrorRate at the webhook")
    assert alert["labels"]["component"] == "api"
    assert alert["labels"]["severity"] == "critical"
    assert alert["receiver"] == CRITICAL
    assert alert["annotations"]["runbook_url"].endswith("/IndexForgeHighErrorRate.md")


def test_every_series_a_rule_reads_exists(traffic: Stack) -> None:
    rules = _rules()
    assert rules, "no rules rendered"
    missing = []
    for rule in rules:
        name = rule.get("alert") or rule.get("record")
        mon.query(traffic.prometheus, rule["expr"])  # evaluates (raises on an error)
        for selector in _selectors(rule["expr"]):
            if not mon.query(traffic.prometheus, f"count({selector})"):
                missing.append(f"{name}: {selector}")
    assert not missing, "selectors with no series:\n" + "\n".join(missing)


def test_every_dashboard_query_returns_data(traffic: Stack) -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 5, queries
    empty = []
    for board, panel, expr in queries:
        if not _selectors(expr):
            continue  # only components not run here
        if not mon.query(traffic.prometheus, _grafana(expr)):
            empty.append(f"{board} / {panel}: {expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)


def test_the_selector_check_can_fail(stack: Stack) -> None:
    """A misspelt metric or label value yields no series, so the checks above would fail."""
    assert not mon.query(stack.prometheus, 'count(http_request_total{component="api"})')
    assert not mon.query(stack.prometheus, 'count(http_requests_total{component="apii"})')

"""Alert rules: one source for both monitoring modes, checked and unit-tested with promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexforge_operator.alerts import rule_file, rule_groups
from indexforge_operator.builders.prometheus import RULES_FILE, prometheus_config

from .support import NAMES, build, find, make_spec

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package `prometheus`; `make system-deps`)",
)
LABELS = {"indexforge_namespace": NAMES.namespace, "indexforge_instance": NAMES.instance}
MI = 1024 * 1024


def _series(metric: str, values: str, **labels: str) -> dict[str, str]:
    all_labels = {**LABELS, **labels}
    text = ",".join(f'{k}="{v}"' for k, v in sorted(all_labels.items()))
    return {"series": f"{metric}{{{text}}}", "values": values}


def _rule(raw: dict[str, Any], alert: str) -> dict[str, Any]:
    rules = rule_groups(make_spec(raw), NAMES)[0]["rules"]
    found: dict[str, Any] = next(r for r in rules if r["alert"] == alert)
    return found


def _expected(raw: dict[str, Any], alert: str, component: str) -> dict[str, Any]:
    rule = _rule(raw, alert)
    annotations = {
        k: v.replace("{{ $labels.component }}", component) for k, v in rule["annotations"].items()
    }
    labels = {**LABELS, "component": component, **rule["labels"]}
    return {"exp_labels": labels, "exp_annotations": annotations}


def _promtool(
    tmp_path: Path, raw: dict[str, Any], tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_file(make_spec(raw), NAMES)))
    suite = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _http(bad_per_min: int, good_per_min: int) -> list[dict[str, str]]:
    return [
        _series(
            "http_requests_total",
            f"0+{bad_per_min}x30",
            component="api",
            status="500",
            method="GET",
            route="/x",
        ),
        _series(
            "http_requests_total",
            f"0+{good_per_min}x30",
            component="api",
            status="200",
            method="GET",
            route="/x",
        ),
    ]


def _latency(slow_share: int) -> list[dict[str, str]]:
    """100 requests/min: (100 - slow_share) take <= 0.1 s, slow_share take 0.5..1 s."""
    fast = 100 - slow_share
    buckets = {"0.1": fast, "0.5": fast, "1": 100, "+Inf": 100}
    return [
        _series(
            "http_request_duration_seconds_bucket",
            f"0+{n}x30",
            component="api",
            le=le,
            method="GET",
            route="/x",
            status="200",
        )
        for le, n in buckets.items()
    ]


def _queue(metric: str, queue: str, values: str) -> dict[str, str]:
    return _series(metric, values, component="rabbitmq", queue=queue, vhost="/")


def _messaging_cases() -> list[tuple[str, dict[str, Any], list[dict[str, str]], str, str, bool]]:
    on: dict[str, Any] = {"messaging": {"enabled": True}}  # maxReplicas 10 x 20 per worker
    ingest, dead, jobs = "indexforge.ingest", "indexforge.ingest.dead", "indexforge.jobs"
    alarm = "rabbitmq_alarms_memory_used_watermark"
    disk = "rabbitmq_alarms_free_disk_space_watermark"
    return [
        ("dlq-filled", on, [_queue("rabbitmq_queue_messages", dead, "0 0 3x28")],
         "IndexForgeIngestDeadLetters", "rabbitmq", True),
        ("dlq-empty", on, [_queue("rabbitmq_queue_messages", dead, "0x30")],
         "IndexForgeIngestDeadLetters", "rabbitmq", False),
        ("backlog-over", on, [_queue("rabbitmq_queue_messages_ready", ingest, "500x30")],
         "IndexForgeIngestBacklog", "rabbitmq", True),
        ("backlog-within", on, [_queue("rabbitmq_queue_messages_ready", ingest, "150x30")],
         "IndexForgeIngestBacklog", "rabbitmq", False),
        ("backlog-bigger-fleet", {"messaging": {"enabled": True, "workers": {"maxReplicas": 50}}},
         [_queue("rabbitmq_queue_messages_ready", ingest, "500x30")],
         "IndexForgeIngestBacklog", "rabbitmq", False),
        ("waiting-no-consumer", on,
         [_queue("rabbitmq_queue_messages_ready", ingest, "5x30"),
          _queue("rabbitmq_queue_consumers", ingest, "0x30")],
         "IndexForgeIngestNoConsumers", "rabbitmq", True),
        ("waiting-consumed", on,
         [_queue("rabbitmq_queue_messages_ready", ingest, "5x30"),
          _queue("rabbitmq_queue_consumers", ingest, "2x30")],
         "IndexForgeIngestNoConsumers", "rabbitmq", False),
        ("outcomes-unrecorded", on,
         [_queue("rabbitmq_queue_messages_ready", jobs, "3x30"),
          _queue("rabbitmq_queue_consumers", jobs, "0x30")],
         "IndexForgeJobOutcomesNotRecorded", "rabbitmq", True),
        ("outcomes-recorded", on,
         [_queue("rabbitmq_queue_messages_ready", jobs, "3x30"),
          _queue("rabbitmq_queue_consumers", jobs, "1x30")],
         "IndexForgeJobOutcomesNotRecorded", "rabbitmq", False),
        ("memory-alarm", on,
         [_series(alarm, "1x30", component="rabbitmq"),
          _series(disk, "0x30", component="rabbitmq")],
         "IndexForgeRabbitMQResourceAlarm", "rabbitmq", True),
        ("no-alarm", on,
         [_series(alarm, "0x30", component="rabbitmq"),
          _series(disk, "0x30", component="rabbitmq")],
         "IndexForgeRabbitMQResourceAlarm", "rabbitmq", False),
    ]  # fmt: skip


# (id, spec, input series, alert, component, fires)
CASES: list[tuple[str, dict[str, Any], list[dict[str, str]], str, str, bool]] = [
    ("errors-2pct", {}, _http(2, 98), "IndexForgeHighErrorRate", "api", True),
    ("errors-half-pct", {}, _http(1, 199), "IndexForgeHighErrorRate", "api", False),
    (
        "errors-2pct-threshold-5",
        {"monitoring": {"alerts": {"errorRatePercent": 5}}},
        _http(2, 98),
        "IndexForgeHighErrorRate",
        "api",
        False,
    ),
    ("p95-slow", {}, _latency(10), "IndexForgeHighLatencyP95", "api", True),
    ("p95-fast", {}, _latency(2), "IndexForgeHighLatencyP95", "api", False),
    (
        "p95-slow-threshold-1s",
        {"monitoring": {"alerts": {"latencyP95Milliseconds": 1000}}},
        _latency(10),
        "IndexForgeHighLatencyP95",
        "api",
        False,
    ),
    (
        "memory-90pct",
        {},
        [_series("process_resident_memory_bytes", f"{int(0.9 * 512 * MI)}x30", component="api")],
        "IndexForgeHighMemory",
        "api",
        True,
    ),
    (
        "memory-50pct",
        {},
        [_series("process_resident_memory_bytes", f"{256 * MI}x30", component="api")],
        "IndexForgeHighMemory",
        "api",
        False,
    ),
    (
        "memory-90pct-threshold-95",
        {"monitoring": {"alerts": {"memoryPercent": 95}}},
        [_series("process_resident_memory_bytes", f"{int(0.9 * 512 * MI)}x30", component="api")],
        "IndexForgeHighMemory",
        "api",
        False,
    ),
    (
        "ml-memory-limit-from-spec",
        {"ml": {"resources": {"limits": {"memory": "8Gi"}}}},
        [_series("process_resident_memory_bytes", f"{3 * 1024 * MI}x30", component="ml")],
        "IndexForgeHighMemory",
        "ml",
        False,
    ),
    (
        "cpu-90pct",
        {},
        [_series("process_cpu_seconds_total", "0+54x30", component="api")],
        "IndexForgeHighCPU",
        "api",
        True,
    ),
    (
        "cpu-50pct",
        {},
        [_series("process_cpu_seconds_total", "0+30x30", component="api")],
        "IndexForgeHighCPU",
        "api",
        False,
    ),
    (
        "redis-full",
        {},
        [
            _series("redis_memory_used_bytes", f"{95 * MI}x30", component="redis-app"),
            _series("redis_memory_max_bytes", f"{100 * MI}x30", component="redis-app"),
        ],
        "IndexForgeRedisMemoryHigh",
        "redis-app",
        True,
    ),
    (
        "redis-roomy",
        {},
        [
            _series("redis_memory_used_bytes", f"{10 * MI}x30", component="redis-app"),
            _series("redis_memory_max_bytes", f"{100 * MI}x30", component="redis-app"),
        ],
        "IndexForgeRedisMemoryHigh",
        "redis-app",
        False,
    ),
    (
        "other-instance-ignored",
        {},
        [
            {
                "series": "process_resident_memory_bytes"
                '{component="api",indexforge_instance="other",indexforge_namespace="shop"}',
                "values": f"{int(0.99 * 512 * MI)}x30",
            }
        ],
        "IndexForgeHighMemory",
        "api",
        False,
    ),
    # Messaging (built-in broker): per-queue series of rabbitmq_prometheus.
    *_messaging_cases(),
]


@needs_promtool
@pytest.mark.parametrize(
    ("raw", "series", "alert", "component", "fires"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_alert_fires_exactly_above_threshold(
    tmp_path: Path,
    raw: dict[str, Any],
    series: list[dict[str, str]],
    alert: str,
    component: str,
    fires: bool,
) -> None:
    expected = [_expected(raw, alert, component)] if fires else []
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{"eval_time": "20m", "alertname": alert, "exp_alerts": expected}],
        }
    ]
    result = _promtool(tmp_path, raw, tests)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alerts_wait_for_the_for_duration(tmp_path: Path) -> None:
    series = _http(5, 95)
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            # rate() needs two samples, then 5m pending: not firing at 4m, firing at 10m.
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "IndexForgeHighErrorRate", "exp_alerts": []},
                {
                    "eval_time": "10m",
                    "alertname": "IndexForgeHighErrorRate",
                    "exp_alerts": [_expected({}, "IndexForgeHighErrorRate", "api")],
                },
            ],
        }
    ]
    result = _promtool(tmp_path, {}, tests)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("raw", [{}, {"excel": {"enabled": False}, "gateway": {"enabled": False}}])
def test_standalone_config_and_rules_pass_promtool_check(
    tmp_path: Path, raw: dict[str, Any]
) -> None:
    assert PROMTOOL is not None
    spec = make_spec(raw)
    (tmp_path / RULES_FILE).write_text(yaml.safe_dump(rule_file(spec, NAMES)))
    config = prometheus_config(spec, NAMES)
    config["rule_files"] = [str(tmp_path / RULES_FILE)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_modes_load_the_same_rules() -> None:
    """The same rules, except that standalone also watches the Alertmanager it deploys."""
    standalone = find(build({}), "ConfigMap", NAMES.config("prometheus"))
    from_file = yaml.safe_load(standalone["data"][RULES_FILE])["groups"]
    operator_mode = find(
        build({}, prometheus_operator=True), "PrometheusRule", NAMES.prometheus_rules
    )
    own = "IndexForgeAlertmanagerNotificationsFailing"
    assert [r["alert"] for r in from_file[0]["rules"] if r.get("alert") == own] == [own]
    from_file[0]["rules"] = [r for r in from_file[0]["rules"] if r.get("alert") != own]
    assert from_file == operator_mode["spec"]["groups"]


def test_every_alert_links_its_runbook() -> None:
    raw = {"monitoring": {"alerts": {"runbookBaseUrl": "https://runbooks.example/ifg/"}}}
    for rule in rule_groups(make_spec(raw), NAMES)[0]["rules"]:
        assert (
            rule["annotations"]["runbook_url"] == f"https://runbooks.example/ifg/{rule['alert']}.md"
        )
        # What an AlertmanagerConfig (matcher strategy OnNamespace) routes by.
        assert rule["labels"]["namespace"] == NAMES.namespace


RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"


def test_every_alert_has_a_runbook_file_and_every_runbook_an_alert() -> None:
    """The default runbookBaseUrl is docs/runbooks in the repository: each alert's link must
    land on a file there, and no runbook may describe an alert that no longer exists."""
    # Messaging on (built-in broker): every optional alert exists.
    groups = rule_groups(make_spec({"messaging": {"enabled": True}}), NAMES, standalone=True)
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert {"IndexForgeHighMemory", "IndexForgeHighCPU", "IndexForgeIngestBacklog"} <= alerts
    files = {p.stem for p in RUNBOOKS.glob("*.md") if p.name != "README.md"}
    assert alerts == files, f"alerts without runbook: {sorted(alerts - files)}; " + (
        f"runbooks without alert: {sorted(files - alerts)}"
    )
    default = make_spec({}).monitoring.alerts.runbook_base_url
    assert default.endswith("/blob/main/docs/runbooks")
    for name in alerts:
        text = (RUNBOOKS / f"{name}.md").read_text()
        assert text.startswith(f"# {name}\n"), name
        for section in ("## Meaning", "## First checks", "## Fixes"):
            assert section in text, f"{name}.md lacks {section}"


def test_no_rules_when_alerts_are_off() -> None:
    """Alerts off: only the SLO recording rules stay (the SLO dashboard reads them); with
    the SLOs off too, there is no rule and no PrometheusRule."""
    groups = rule_groups(make_spec({"monitoring": {"alerts": {"enabled": False}}}), NAMES)
    assert [g["name"].rsplit(".", 1)[-1] for g in groups] == ["slo-services", "slo-gateway"]
    assert all("record" in r for g in groups for r in g["rules"])
    off = {"monitoring": {"alerts": {"enabled": False}, "slo": {"enabled": False}}}
    assert rule_groups(make_spec(off), NAMES) == []
    objs = build(off, prometheus_operator=True)
    assert not [o for o in objs if o["kind"] == "PrometheusRule"]


def test_service_monitors_carry_user_labels_and_select_headless_services() -> None:
    raw = {"monitoring": {"serviceMonitor": {"labels": {"release": "kps"}}}}
    objs = build(raw, prometheus_operator=True)
    monitors = [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert monitors
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kps"
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            o
            for o in objs
            if o["kind"] == "Service" and selector.items() <= o["metadata"]["labels"].items()
        ]
        assert [s["spec"]["clusterIP"] for s in services] == ["None"]
        port = monitor["spec"]["endpoints"][0]["port"]
        assert port in [p["name"] for p in services[0]["spec"]["ports"]]
    assert not [o for o in objs if o["metadata"]["name"] == NAMES.component("prometheus")]


def test_standalone_prometheus_scrapes_its_alertmanager() -> None:
    """Failed notifications are only visible in Alertmanager's own metrics; with
    prometheus-operator the cluster's Alertmanager is not ours to scrape."""
    config = prometheus_config(make_spec({}), NAMES)
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    job = jobs[NAMES.component("alertmanager")]
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0]["port"] == 9093
    assert job["dns_sd_configs"][0]["names"] == [NAMES.fqdn(NAMES.headless("alertmanager"))]
    off = prometheus_config(make_spec({"monitoring": {"alertmanager": {"enabled": False}}}), NAMES)
    assert NAMES.component("alertmanager") not in {j["job_name"] for j in off["scrape_configs"]}
    monitors = [o for o in build({}, prometheus_operator=True) if o["kind"] == "ServiceMonitor"]
    assert NAMES.component("alertmanager") not in {m["metadata"]["name"] for m in monitors}

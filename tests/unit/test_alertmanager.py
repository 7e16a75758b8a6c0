"""Alert delivery: receivers from key names, the rendered alertmanager.yml checked and routed by
the real amtool (Debian's Alertmanager 0.25), the StatefulSet, the Prometheus `alerting` block,
and the AlertmanagerConfig against the real CRD schema."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from indexforge_operator.builders.alertmanager import (
    CRITICAL,
    RECEIVERS_DIR,
    WARNING,
    alertmanager_config,
    alertmanager_data,
    receivers,
)
from indexforge_operator.builders.network import flows
from indexforge_operator.builders.prometheus import RULES_FILE, prometheus_config
from indexforge_operator.decisions import check_alertmanager_secret, components
from indexforge_operator.spec_alertmanager import RECEIVER_KEYS
from tests import reference
from tests.charts.schemas import strict

from .support import NAMES, build, find, make_spec, maybe

AMTOOL = shutil.which("amtool")
PROMTOOL = shutil.which("promtool")
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool not installed (Debian package `prometheus-alertmanager`; `make system-deps`)",
)
SECRET = {"receiversSecretRef": {"name": "alert-receivers"}}
EMAIL = {
    "to": "oncall@example.com",
    "fromAddress": "am@example.com",
    "smarthost": "smtp.example.com:587",
}
EVERYTHING = {
    **SECRET,
    "webhookUrl": "https://hooks.example.com/alerts",
    "slackChannel": "#ops",
    "email": {**EMAIL, "authUsername": "alertmanager"},
}


def _spec(alertmanager: dict[str, Any], **monitoring: Any) -> Any:
    return make_spec({"monitoring": {"alertmanager": alertmanager, **monitoring}})


def _channels(config: dict[str, Any]) -> dict[str, set[str]]:
    return {
        r["name"]: {k.removesuffix("_configs") for k in r if k.endswith("_configs")}
        for r in config["receivers"]
    }


# (id, alertmanager spec, key names in the Secret, channels of critical, channels of warning)
RECEIVER_CASES = [
    ("nothing", {}, set(RECEIVER_KEYS), set(), set()),
    ("secret-without-keys", SECRET, set(), set(), set()),
    ("slack-only", SECRET, {"slack-api-url"}, {"slack"}, {"slack"}),
    ("pagerduty-only", SECRET, {"pagerduty-routing-key"}, {"pagerduty"}, set()),
    ("foreign-keys-ignored", SECRET, {"api-url", "token"}, set(), set()),
    (
        "all",
        EVERYTHING,
        set(RECEIVER_KEYS),
        {"pagerduty", "slack", "webhook"},
        {"slack", "email", "webhook"},
    ),
    ("webhook-needs-no-key", {"webhookUrl": "http://sink:8080/"}, set(), {"webhook"}, {"webhook"}),
    ("email-needs-no-key", {"email": EMAIL}, set(), set(), {"email"}),
    (
        "explicit-keys-win",
        {**SECRET, "receiversSecretKeys": ["pagerduty-routing-key"]},
        {"slack-api-url"},
        {"pagerduty"},
        set(),
    ),
]


@pytest.mark.parametrize(
    ("alertmanager", "keys", "critical", "warning"),
    [c[1:] for c in RECEIVER_CASES],
    ids=[c[0] for c in RECEIVER_CASES],
)
def test_receivers_follow_key_names(
    alertmanager: dict[str, Any], keys: set[str], critical: set[str], warning: set[str]
) -> None:
    config = alertmanager_config(_spec(alertmanager), keys)
    assert _channels(config) == {CRITICAL: critical, WARNING: warning}


def test_credentials_are_files_of_the_mounted_secret_never_values() -> None:
    config = alertmanager_config(_spec(EVERYTHING), RECEIVER_KEYS)
    text = yaml.safe_dump(config)
    files = {
        value
        for receiver in config["receivers"]
        for key, items in receiver.items()
        if key.endswith("_configs")
        for item in items
        for value in _leaves(item)
        if isinstance(value, str) and value.startswith("/")
    }
    assert files == {f"{RECEIVERS_DIR}/{k}" for k in RECEIVER_KEYS}
    for field in ("api_url:", "routing_key:", "auth_password:", "credentials:", "service_key:"):
        assert field not in text  # only the *_file forms


def _leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]


def test_grouping_and_inhibition() -> None:
    config = alertmanager_config(_spec({"groupWaitSeconds": 2, "repeatIntervalMinutes": 60}))
    route = config["route"]
    assert route["group_by"] == ["alertname", "indexforge_namespace", "indexforge_instance"]
    assert (route["group_wait"], route["repeat_interval"]) == ("2s", "60m")
    (rule,) = config["inhibit_rules"]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity="warning"']
    assert {"alertname", "indexforge_instance"} <= set(rule["equal"])


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert AMTOOL is not None
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=30, check=False)


@needs_amtool
@pytest.mark.parametrize(
    ("alertmanager", "keys"),
    [(c[1], c[2]) for c in RECEIVER_CASES],
    ids=[c[0] for c in RECEIVER_CASES],
)
def test_amtool_accepts_every_rendered_config(
    alertmanager: dict[str, Any], keys: set[str], tmp_path: Path
) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager_data(_spec(alertmanager), keys)["alertmanager.yml"])
    proc = _amtool("check-config", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=IndexForgeHighErrorRate"], CRITICAL),
        (["severity=warning", "alertname=IndexForgeHighLatencyP95"], WARNING),
        (["alertname=SomethingElse"], WARNING),  # no severity: the default route
    ],
)
def test_amtool_routes_by_severity(labels: list[str], receiver: str, tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager_data(_spec(EVERYTHING), RECEIVER_KEYS)["alertmanager.yml"])
    proc = _amtool(
        "config", "routes", "test", f"--config.file={path}", f"--verify.receivers={receiver}",
        *labels,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receiver


def test_statefulset_single_replica_has_no_gossip_and_no_pdb() -> None:
    objs = build({"monitoring": {"alertmanager": SECRET}})
    sts = find(objs, "StatefulSet", NAMES.component("alertmanager"))
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert "--cluster.listen-address=" in container["args"]
    assert not any(a.startswith("--cluster.peer") for a in container["args"])
    assert maybe(objs, "PodDisruptionBudget", NAMES.component("alertmanager")) is None
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["receivers"]["secret"] == {
        "secretName": "alert-receivers", "optional": True, "defaultMode": 0o440,
    }  # fmt: skip
    assert volumes["config"]["secret"]["secretName"] == NAMES.config("alertmanager")
    config = find(objs, "Secret", NAMES.config("alertmanager"))
    text = base64.b64decode(config["data"]["alertmanager.yml"]).decode()
    assert yaml.safe_load(text) == alertmanager_config(_spec(SECRET))


def test_three_replicas_gossip_with_each_other_and_get_a_pdb() -> None:
    objs = build({"monitoring": {"alertmanager": {"replicas": 3}}})
    sts = find(objs, "StatefulSet", NAMES.component("alertmanager"))
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    peers = [a for a in args if a.startswith("--cluster.peer=")]
    assert peers == [
        f"--cluster.peer=demo-alertmanager-{i}.demo-alertmanager-headless.shop.svc:9094"
        for i in range(3)
    ]
    assert find(objs, "PodDisruptionBudget", NAMES.component("alertmanager"))
    policy = find(objs, "NetworkPolicy", NAMES.component("alertmanager"))
    gossip = [
        r for r in policy["spec"]["ingress"] if {"protocol": "UDP", "port": 9094} in r["ports"]
    ]
    assert gossip and {"protocol": "TCP", "port": 9094} in gossip[0]["ports"]


def test_network_lets_prometheus_in_and_notifications_out() -> None:
    spec = _spec(EVERYTHING)
    found = [
        f for f in flows(spec, prometheus_operator=False) if "alertmanager" in (f.source, f.dest)
    ]
    assert [(f.source, f.dest, f.ports) for f in found] == [
        ("prometheus", "alertmanager", (9093,)),
        ("alertmanager", None, (443, 587)),  # Slack/PagerDuty + webhook (https), SMTP
    ]
    assert "alertmanager" not in components(spec, prometheus_operator=True)


def test_prometheus_sends_to_every_alertmanager_replica(tmp_path: Path) -> None:
    spec = make_spec({})
    config = prometheus_config(spec, NAMES)
    (am,) = config["alerting"]["alertmanagers"]
    assert am["dns_sd_configs"][0]["names"] == ["demo-alertmanager-headless.shop.svc"]
    assert am["dns_sd_configs"][0]["port"] == 9093
    off = prometheus_config(_spec({"enabled": False}), NAMES)
    assert "alerting" not in off
    objs = build({"monitoring": {"alertmanager": {"enabled": False}}})
    assert maybe(objs, "StatefulSet", NAMES.component("alertmanager")) is None
    if PROMTOOL is None:
        pytest.skip("promtool not installed (`make system-deps`)")
    prom = find(build({}), "ConfigMap", NAMES.config("prometheus"))
    for name, text in prom["data"].items():
        (tmp_path / name).write_text(text)
    rewritten = yaml.safe_load(prom["data"]["prometheus.yml"])
    rewritten["rule_files"] = [str(tmp_path / RULES_FILE)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(rewritten))
    proc = subprocess.run(
        [PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _crd_validator() -> jsonschema.Draft7Validator:
    path = next(
        p
        for p in reference.crd_files("prometheus-operator")
        if p.name.endswith("_alertmanagerconfigs.yaml")
    )
    schema = strict(reference.crd_schema(path, "v1alpha1"))
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize(
    "alertmanager",
    [{}, SECRET, EVERYTHING, {**EVERYTHING, "receiversSecretKeys": list(RECEIVER_KEYS)}],
    ids=["defaults", "secret", "everything", "everything-listed"],
)
def test_alertmanager_config_matches_the_real_crd_schema(alertmanager: dict[str, Any]) -> None:
    objs = build({"monitoring": {"alertmanager": alertmanager}}, prometheus_operator=True)
    amc = find(objs, "AlertmanagerConfig", NAMES.component("alertmanager"))
    errors = [f"{list(e.path)}: {e.message}" for e in _crd_validator().iter_errors(amc)]
    assert not errors, errors
    assert maybe(objs, "StatefulSet", NAMES.component("alertmanager")) is None


def test_alertmanager_config_references_the_secret_by_key() -> None:
    spec = _spec({**EVERYTHING, "receiversSecretKeys": list(RECEIVER_KEYS)})
    objs = build(
        {
            "monitoring": {
                "alertmanager": {**EVERYTHING, "receiversSecretKeys": list(RECEIVER_KEYS)}
            }
        },
        prometheus_operator=True,
    )
    amc = find(objs, "AlertmanagerConfig", NAMES.component("alertmanager"))
    critical, warning = amc["spec"]["receivers"]
    assert critical["pagerdutyConfigs"][0]["routingKey"] == {
        "name": "alert-receivers", "key": "pagerduty-routing-key",
    }  # fmt: skip
    assert warning["emailConfigs"][0]["authPassword"]["key"] == "smtp-auth-password"
    assert critical["webhookConfigs"][0]["httpConfig"]["authorization"]["credentials"]["key"] == (
        "webhook-bearer-token"
    )
    assert receivers(spec, ()).slack  # the explicit list, not the (unknown) Secret


# (id, alertmanager spec, Secret key names or None when missing, expected reason)
SECRET_CASES = [
    ("no-ref", {}, None, None),
    ("missing", SECRET, None, "AlertmanagerSecretMissing"),
    ("present", SECRET, frozenset(), None),
    (
        "listed-key-missing",
        {**SECRET, "receiversSecretKeys": ["slack-api-url"]},
        frozenset({"pagerduty-routing-key"}),
        "AlertmanagerSecretKeyMissing",
    ),
    ("disabled", {**SECRET, "enabled": False}, None, None),
]


@pytest.mark.parametrize(
    ("alertmanager", "keys", "reason"),
    [c[1:] for c in SECRET_CASES],
    ids=[c[0] for c in SECRET_CASES],
)
def test_secret_findings(
    alertmanager: dict[str, Any], keys: frozenset[str] | None, reason: str | None
) -> None:
    found = check_alertmanager_secret(_spec(alertmanager), keys=keys, prometheus_operator=False)
    assert (found.reason if found else None) == reason
    if found:
        assert "alert-receivers" in found.message

"""Prometheus and Grafana on PVCs, config reloads instead of restarts, backup CronJobs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator.builders.backup import LABEL_SOURCE, claim_of
from indexforge_operator.naming import selector_labels
from indexforge_operator.ownership import prune_candidates
from tests.unit.support import NAMES, build, find, make_spec, maybe

BACKUP = {"backup": {"enabled": True, "target": {"volume": {"claimName": "backups"}}}}


def _sts(raw: dict[str, Any], component: str) -> dict[str, Any]:
    return find(build(raw), "StatefulSet", NAMES.component(component))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("component", "size_key", "size", "mount"),
    [
        ("prometheus", "prometheus", "10Gi", "/prometheus"),
        ("grafana", "grafana", "1Gi", "/var/lib/grafana"),
    ],
)
def test_data_on_a_claim_template(component: str, size_key: str, size: str, mount: str) -> None:
    objs = build({})
    assert maybe(objs, "Deployment", NAMES.component(component)) is None  # type: ignore[arg-type]
    sts = _sts({}, component)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == size
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in pod["volumes"]}  # the claim, not an emptyDir
    main = pod["containers"][0]
    assert {"name": "data", "mountPath": mount} in main["volumeMounts"]
    # The governing Service exists and is not scraped.
    headless = find(objs, "Service", NAMES.headless(component))  # type: ignore[arg-type]
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert "indexforge.io/scrape" not in headless["metadata"]["labels"]
    custom = _sts({"monitoring": {size_key: {"storageSize": "3Gi"}}}, component)
    assert custom["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "3Gi"
    }


def test_storage_sizes_are_bounded() -> None:
    with pytest.raises(ValidationError):
        make_spec({"monitoring": {"grafana": {"storageSize": "1Ti"}}})


def test_old_deployments_are_pruned_on_upgrade() -> None:
    """An instance created by an operator that ran Prometheus/Grafana as Deployments: the
    reconciler's prune deletes them (the StatefulSets of the same name are other objects)."""
    desired = build({})
    old = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": NAMES.component(c),  # type: ignore[arg-type]
                "namespace": NAMES.namespace,
                "ownerReferences": [{"uid": "cr-uid"}],
            },
        }
        for c in ("prometheus", "grafana")
    ]
    owned = [
        {**o, "metadata": {**o["metadata"], "ownerReferences": [{"uid": "cr-uid"}]}}
        for o in desired
    ]
    doomed = prune_candidates([*old, *owned], desired, "cr-uid")
    assert len(owned) > 20
    assert [(o["kind"], o["metadata"]["name"]) for o in doomed] == [
        ("Deployment", "demo-prometheus"),
        ("Deployment", "demo-grafana"),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"monitoring": {"alerts": {"cpuPercent": 90}}},  # a rule
        {"monitoring": {"alerts": {"enabled": False}}},  # the whole rule file
        {"monitoring": {"prometheus": {"scrapeInterval": "30s"}}},  # prometheus.yml
        {"monitoring": {"alertmanager": {"webhookUrl": "http://hooks.example.com/a"}}},
    ],
)
def test_config_changes_leave_the_pod_templates_alone(change: dict[str, Any]) -> None:
    """The reloader applies them: neither Prometheus nor Alertmanager restarts."""
    for component in ("prometheus", "alertmanager"):
        before = _sts({}, component)["spec"]["template"]
        after = _sts(change, component)["spec"]["template"]
        assert after == before, component
        assert "annotations" not in before["metadata"]


@pytest.mark.parametrize(
    ("component", "path", "port"),
    [("prometheus", "/etc/prometheus", 9090), ("alertmanager", "/etc/alertmanager/config", 9093)],
)
def test_reloader_watches_the_config_volume(component: str, path: str, port: int) -> None:
    pod = _sts({}, component)["spec"]["template"]["spec"]
    main, reloader = pod["containers"]
    assert reloader["name"] == "config-reloader"
    assert reloader["image"].startswith("quay.io/prometheus-operator/prometheus-config-reloader:")
    assert f"--watched-dir={path}" in reloader["args"]
    assert f"--reload-url=http://127.0.0.1:{port}/-/reload" in reloader["args"]
    config_mount = next(m for m in main["volumeMounts"] if m["mountPath"] == path)
    assert {**config_mount, "readOnly": True} in reloader["volumeMounts"]
    assert "ports" not in reloader  # opens nothing


def test_lifecycle_always_admin_api_only_with_backups() -> None:
    args = _sts({}, "prometheus")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--web.enable-lifecycle" in args
    assert "--web.enable-admin-api" not in args
    with_backup = _sts(BACKUP, "prometheus")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--web.enable-admin-api" in with_backup


def test_no_backups_by_default() -> None:
    objs = build({})
    assert not [o for o in objs if o["kind"] == "CronJob"]
    assert maybe(objs, "NetworkPolicy", NAMES.component("backup")) is None


def test_backup_needs_a_target() -> None:
    with pytest.raises(ValidationError, match=r"backup\.target is required"):
        make_spec({"backup": {"enabled": True}})
    with pytest.raises(ValidationError):
        make_spec({"backup": {"enabled": True, "schedule": "every night", **BACKUP["backup"]}})


@pytest.mark.parametrize(
    ("source", "uid", "data_dir", "args"),
    [
        (
            "prometheus",
            65534,
            "/prometheus",
            ["prometheus", "--url", "http://demo-prometheus.shop.svc:9090"],
        ),
        ("grafana", 472, "/var/lib/grafana", ["grafana", "--db", "/var/lib/grafana/grafana.db"]),
    ],
)
def test_backup_cronjob(source: str, uid: int, data_dir: str, args: list[str]) -> None:
    raw = {"backup": {**BACKUP["backup"], "schedule": "15 1 * * *", "retention": 4}}
    job = find(build(raw), "CronJob", NAMES.backup(source))  # type: ignore[arg-type]
    assert len(job["metadata"]["name"]) <= 52
    spec = job["spec"]
    assert spec["schedule"] == "15 1 * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    pod_template = spec["jobTemplate"]["spec"]["template"]
    assert pod_template["metadata"]["labels"][LABEL_SOURCE] == source
    assert pod_template["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"
    pod = pod_template["spec"]
    # Co-located with the pod whose ReadWriteOnce volume it reads.
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == selector_labels(NAMES, source)  # type: ignore[arg-type]
    assert pod["securityContext"]["runAsUser"] == uid
    (container,) = pod["containers"]
    assert container["image"] == make_spec({}).api.image  # Python + this package
    command = container["command"]
    assert command[:3] == ["python", "-m", "indexforge_services.common.backup"]
    assert command[3 : 3 + len(args)] == args
    assert command[-4:] == ["--target", f"/backup/{source}", "--keep", "4"]
    claims = {
        v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]
    }
    assert claims["source"] == claim_of(NAMES, source)  # type: ignore[arg-type]
    assert claims["source"] == f"data-demo-{source}-0"
    assert claims["target"] == "backups"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {data_dir, "/backup", "/tmp"}


def test_backups_follow_what_is_deployed() -> None:
    operator_mode = build(BACKUP, prometheus_operator=True)  # no Prometheus of ours
    assert sorted(o["metadata"]["name"] for o in operator_mode if o["kind"] == "CronJob") == [
        NAMES.backup("grafana"),
        NAMES.backup("redis-app"),
        NAMES.backup("redis-state"),
        NAMES.backup("weaviate"),
    ]
    stores_only = build({**BACKUP, "monitoring": {"enabled": False}})
    assert sorted(o["metadata"]["name"] for o in stores_only if o["kind"] == "CronJob") == [
        NAMES.backup("redis-app"),
        NAMES.backup("redis-state"),
        NAMES.backup("weaviate"),
    ]
    raw = {"backup": {**BACKUP["backup"], "weaviate": False, "redis": False}}
    nothing = build({**raw, "monitoring": {"enabled": False}})
    assert not [
        o
        for o in nothing
        if o["kind"] in ("CronJob", "ServiceAccount") and o["metadata"]["name"].endswith("backup")
    ]

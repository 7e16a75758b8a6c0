"""Builder output: shape, labels/selectors, Pod Security "restricted", determinism, checksums."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from indexforge_operator.builders import APPLY_ORDER, build_all
from indexforge_operator.builders.common import CHECKSUM_ANNOTATION
from indexforge_operator.decisions import components
from indexforge_operator.naming import (
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PART_OF,
    Names,
)
from indexforge_operator.yamlio import dump_stream

from .support import (
    NAMES,
    build,
    build_fresh,
    containers,
    env_of,
    find,
    make_spec,
    maybe,
    secrets_for,
    workloads,
)

# (id, spec, prometheus_operator): the variants every structural check runs over.
VARIANTS: list[tuple[str, dict[str, Any], bool]] = [
    ("defaults", {}, False),
    ("defaults-prometheus-operator", {}, True),
    ("gpu", {"ml": {"gpu": {"enabled": True, "count": 2, "runtimeClassName": "nvidia"}}}, False),
    (
        "bare",
        {
            "excel": {"enabled": False},
            "gateway": {"enabled": False},
            "monitoring": {"enabled": False},
            "api": {"autoscaling": {"enabled": False}, "replicas": 1},
        },
        False,
    ),
    (
        "no-persistence",
        {
            "redis": {"app": {"persistence": {"enabled": False}, "exporter": {"enabled": False}}},
            "weaviate": {"persistence": {"enabled": False}, "replicas": 3},
        },
        False,
    ),
    (
        "tls-sentry",
        {
            "gateway": {"tls": {"enabled": True, "secretName": "edge-tls"}},
            "sentry": {"enabled": True, "dsnSecretRef": {"name": "sentry", "key": "dsn"}},
            "imagePullSecrets": ["regcred"],
        },
        False,
    ),
    (
        "alerting",
        {
            "monitoring": {
                "alertmanager": {
                    "replicas": 3,
                    "receiversSecretRef": {"name": "alert-receivers"},
                    "receiversSecretKeys": ["slack-api-url", "pagerduty-routing-key"],
                    "webhookUrl": "https://hooks.example.com/alerts",
                    "email": {
                        "to": "oncall@example.com",
                        "fromAddress": "am@example.com",
                        "smarthost": "smtp.example.com:587",
                    },
                }
            }
        },
        False,
    ),
]
VARIANT_IDS = [v[0] for v in VARIANTS]
POD_SECURITY_VOLUMES = {"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected"}


@pytest.fixture(params=VARIANTS, ids=VARIANT_IDS)
def variant(request: pytest.FixtureRequest) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    _, raw, operator_mode = request.param
    return build(raw, prometheus_operator=operator_mode), raw, operator_mode


def test_every_object_is_namespaced_labelled_and_unowned(variant: Any) -> None:
    objs, _, _ = variant
    for obj in objs:
        meta = obj["metadata"]
        where = f"{obj['kind']}/{meta['name']}"
        assert meta["namespace"] == NAMES.namespace, where
        assert meta["name"].startswith(f"{NAMES.instance}-"), where
        assert len(meta["name"]) <= 63, where
        assert meta["labels"][LABEL_NAME] == "indexforge", where
        assert meta["labels"][LABEL_INSTANCE] == NAMES.instance, where
        assert meta["labels"][LABEL_PART_OF] == "indexforge", where
        assert meta["labels"][LABEL_MANAGED_BY] == "indexforge-operator", where
        assert "ownerReferences" not in meta, where  # the reconciler adds them
        assert obj["kind"] in APPLY_ORDER, where


def test_object_identities_are_unique_and_ordered(variant: Any) -> None:
    objs, _, _ = variant
    keys = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(keys) == len(set(keys))
    ranks = [APPLY_ORDER.index(kind) for kind, _ in keys]
    assert ranks == sorted(ranks)


def test_selectors_are_the_three_immutable_labels_and_match_pods(variant: Any) -> None:
    objs, _, _ = variant
    for obj in workloads(objs):
        selector = obj["spec"]["selector"]["matchLabels"]
        assert set(selector) == {LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT}
        pod_labels = obj["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
    for svc in (o for o in objs if o["kind"] == "Service"):
        selected = [
            w
            for w in workloads(objs)
            if svc["spec"]["selector"].items()
            <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"Service {svc['metadata']['name']} selects {len(selected)}"


def test_every_pod_meets_pod_security_restricted(variant: Any) -> None:
    objs, _, _ = variant
    for obj in workloads(objs):
        pod = obj["spec"]["template"]["spec"]
        where = obj["metadata"]["name"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] != 0, where
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), where
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= POD_SECURITY_VOLUMES, (where, volume)
        for c in containers(pod):
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert csc["capabilities"] == {"drop": ["ALL"]}, (where, c["name"])
            assert csc["runAsNonRoot"] is True, (where, c["name"])
            assert csc["readOnlyRootFilesystem"] is True, (where, c["name"])
            assert csc["seccompProfile"] == {"type": "RuntimeDefault"}, (where, c["name"])
            assert not any("hostPort" in p for p in c.get("ports", [])), (where, c["name"])
            # A read-only root needs somewhere to write temporary files.
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts or c["name"] == "exporter", (where, c["name"])


def test_service_accounts_exist_and_mount_no_token(variant: Any) -> None:
    objs, _, _ = variant
    accounts = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServiceAccount"}
    for obj in workloads(objs):
        name = obj["spec"]["template"]["spec"]["serviceAccountName"]
        assert accounts[name]["automountServiceAccountToken"] is False


def test_components_match_the_workloads_built(variant: Any) -> None:
    objs, raw, operator_mode = variant
    expected = components(make_spec(raw), prometheus_operator=operator_mode)
    built = [o["metadata"]["labels"][LABEL_COMPONENT] for o in workloads(objs)]
    assert sorted(built) == sorted(expected)


def test_pvc_templates_only_with_persistence(variant: Any) -> None:
    objs, raw, _ = variant
    spec = make_spec(raw)
    wanted = {
        "redis-app": spec.redis.app.persistence,
        "redis-ml": spec.redis.ml.persistence,
        "weaviate": spec.weaviate.persistence,
    }
    for component, persistence in wanted.items():
        sts = find(objs, "StatefulSet", NAMES.component(component))  # type: ignore[arg-type]
        claims = sts["spec"].get("volumeClaimTemplates", [])
        if persistence.enabled:
            assert [c["spec"]["resources"]["requests"]["storage"] for c in claims] == [
                persistence.size
            ]
            policy = sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"]
            assert policy == spec.deletion_policy
        else:
            assert claims == []
            volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
            assert "emptyDir" in volumes["data"]


@pytest.mark.parametrize(
    ("raw", "operator_mode"), [(v[1], v[2]) for v in VARIANTS], ids=VARIANT_IDS
)
def test_same_input_same_output(raw: dict[str, Any], operator_mode: bool) -> None:
    first = dump_stream(build_fresh(raw, prometheus_operator=operator_mode))
    second = dump_stream(build_fresh(raw, prometheus_operator=operator_mode))
    assert first == second
    assert list(yaml.safe_load_all(first))  # and it is a valid YAML stream


def _ml_pod(raw: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = find(build(raw), "Deployment", NAMES.component("ml"))["spec"]["template"]
    return pod["spec"]


@pytest.mark.parametrize(
    ("gpu", "device", "limit", "runtime"),
    [
        ({"enabled": False}, "cpu", None, None),
        ({"enabled": True}, "cuda", "1", None),
        ({"enabled": True, "count": 4, "runtimeClassName": "nvidia"}, "cuda", "4", "nvidia"),
        ({"enabled": True, "count": 2, "resourceName": "amd.com/gpu"}, "cuda", "2", None),
    ],
    ids=["off", "on", "four-with-runtime", "amd"],
)
def test_ml_gpu_scheduling(
    gpu: dict[str, Any], device: str, limit: str | None, runtime: str | None
) -> None:
    raw = {"ml": {"gpu": {**gpu, "nodeSelector": {"gpu.example/present": "true"}}}}
    pod = _ml_pod(raw)
    container = pod["containers"][0]
    resource = gpu.get("resourceName", "nvidia.com/gpu")
    assert env_of(container)["INDEXFORGE_DEVICE"] == device
    assert container["resources"]["limits"].get(resource) == limit
    assert pod.get("runtimeClassName") == runtime
    tolerated = {t["key"] for t in pod.get("tolerations", [])}
    if gpu["enabled"]:
        assert resource in tolerated
        assert pod["nodeSelector"] == {"gpu.example/present": "true"}
    else:
        assert not tolerated and "nodeSelector" not in pod


def test_ml_extra_tolerations_are_kept() -> None:
    extra = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    pod = _ml_pod({"ml": {"gpu": {"enabled": True, "tolerations": [extra]}}})
    assert extra in pod["tolerations"]


def test_services_get_their_dependencies_from_env() -> None:
    raw = {"sentry": {"enabled": True, "dsnSecretRef": {"name": "s", "key": "k"}}}
    objs = build(raw)
    api = env_of(
        find(objs, "Deployment", NAMES.component("api"))["spec"]["template"]["spec"]["containers"][
            0
        ]
    )
    assert api["INDEXFORGE_REDIS_URL"].startswith(
        f"redis://{NAMES.component('redis-app')}.shop.svc:"
    )
    assert api["INDEXFORGE_WEAVIATE_URL"] == f"http://{NAMES.component('weaviate')}.shop.svc:8080"
    assert api["INDEXFORGE_ML_URL"].startswith(f"http://{NAMES.component('ml')}.")
    assert api["INDEXFORGE_EXCEL_URL"].startswith(f"http://{NAMES.component('excel')}.")
    assert api["INDEXFORGE_OTLP_ENDPOINT"].endswith(":4318")
    assert api["INDEXFORGE_SENTRY_DSN"] == {"secretKeyRef": {"name": "s", "key": "k"}}
    weaviate = find(objs, "StatefulSet", NAMES.component("weaviate"))
    w_env = env_of(weaviate["spec"]["template"]["spec"]["containers"][0])
    assert w_env["TRANSFORMERS_INFERENCE_API"] == api["INDEXFORGE_ML_URL"]
    assert w_env["DEFAULT_VECTORIZER_MODULE"] == "text2vec-transformers"


def test_no_sentry_or_tracing_env_when_off() -> None:
    objs = build({"monitoring": {"jaeger": {"enabled": False}}})
    api = env_of(
        find(objs, "Deployment", NAMES.component("api"))["spec"]["template"]["spec"]["containers"][
            0
        ]
    )
    assert "INDEXFORGE_SENTRY_DSN" not in api and "INDEXFORGE_OTLP_ENDPOINT" not in api


@pytest.mark.parametrize(
    ("raw", "hpa", "replicas"),
    [
        ({}, True, None),
        ({"api": {"autoscaling": {"enabled": False}, "replicas": 3}}, False, 3),
    ],
    ids=["hpa", "fixed"],
)
def test_api_hpa_owns_replicas(raw: dict[str, Any], hpa: bool, replicas: int | None) -> None:
    objs = build(raw)
    deployment = find(objs, "Deployment", NAMES.component("api"))
    assert deployment["spec"].get("replicas") == replicas
    found = maybe(objs, "HorizontalPodAutoscaler", NAMES.component("api"))
    assert (found is not None) == hpa
    if found is not None:
        assert found["apiVersion"] == "autoscaling/v2"
        metric = found["spec"]["metrics"][0]["resource"]
        assert metric["name"] == "cpu" and metric["target"]["averageUtilization"] == 70


@pytest.mark.parametrize(
    ("raw", "component", "expected"),
    [
        ({}, "gateway", True),
        ({"gateway": {"replicas": 1}}, "gateway", False),
        ({"gateway": {"podDisruptionBudget": {"enabled": False}}}, "gateway", False),
        ({}, "ml", False),
        ({"ml": {"replicas": 2}}, "ml", True),
        ({"weaviate": {"replicas": 3}}, "weaviate", True),
    ],
)
def test_pdb_only_for_multi_replica(raw: dict[str, Any], component: str, expected: bool) -> None:
    pdb = maybe(build(raw), "PodDisruptionBudget", f"{NAMES.instance}-{component}")
    assert (pdb is not None) == expected


def _checksum(objs: list[dict[str, Any]], kind: str, component: str) -> str:
    workload = find(objs, kind, f"{NAMES.instance}-{component}")
    value: str = workload["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]
    return value


# (workload, change that alters its config, change that must not)
CHECKSUM_CASES = [
    (
        "StatefulSet",
        "redis-app",
        {"redis": {"app": {"maxmemory": "256mb"}}},
        {"api": {"replicas": 5}},
    ),
    (
        "StatefulSet",
        "redis-ml",
        {"redis": {"ml": {"appendonly": False}}},
        {"redis": {"app": {"maxmemory": "256mb"}}},
    ),
    (
        "Deployment",
        "gateway",
        {"gateway": {"rateLimiting": {"apiPerMinute": 120}}},
        {"gateway": {"replicas": 3}},
    ),
    (
        "Deployment",
        "gateway",
        {"gateway": {"keyAuth": {"consumers": [{"username": "x"}]}}},
        {"ml": {"batchSize": 8}},
    ),
    # Prometheus and Alertmanager reload their config instead (test_monitoring_storage.py).
    (
        "StatefulSet",
        "grafana",
        {"monitoring": {"jaeger": {"enabled": False}}},
        {"monitoring": {"alerts": {"cpuPercent": 90}}},
    ),
]


@pytest.mark.parametrize(("kind", "component", "change", "unrelated"), CHECKSUM_CASES)
def test_checksum_follows_config(
    kind: str, component: str, change: dict[str, Any], unrelated: dict[str, Any]
) -> None:
    base = _checksum(build({}), kind, component)
    assert len(base) == 64
    assert _checksum(build(change), kind, component) != base
    assert _checksum(build(unrelated), kind, component) == base


def test_kong_checksum_follows_generated_keys() -> None:
    spec = make_spec({})
    base = secrets_for(spec)
    one = dataclasses.replace(base, consumer_keys={"default": "a"})
    two = dataclasses.replace(base, consumer_keys={"default": "b"})
    first = build_all(spec, NAMES, secrets=one, prometheus_operator=False)
    second = build_all(spec, NAMES, secrets=two, prometheus_operator=False)
    assert _checksum(first, "Deployment", "gateway") != _checksum(second, "Deployment", "gateway")


def test_redis_conf_renders_the_spec() -> None:
    objs = build(
        {
            "redis": {
                "ml": {"maxmemory": "2gb", "maxmemoryPolicy": "allkeys-lfu", "appendonly": False}
            }
        }
    )
    conf = find(objs, "ConfigMap", NAMES.config("redis-ml"))["data"]["redis.conf"]
    lines = set(conf.splitlines())
    assert {"maxmemory 2gb", "maxmemory-policy allkeys-lfu", "appendonly no"} <= lines
    app = find(objs, "ConfigMap", NAMES.config("redis-app"))["data"]["redis.conf"].splitlines()
    assert {"maxmemory 512mb", "maxmemory-policy allkeys-lru", "appendonly yes"} <= set(app)


def test_names_reject_what_would_break_child_names() -> None:
    for bad in ("a" * 41, "9lives", "Upper", "trailing-"):
        with pytest.raises(ValueError):
            Names(instance=bad, namespace="ns")
    assert Names(instance="a" * 40, namespace="ns").headless("redis-app").__len__() <= 63

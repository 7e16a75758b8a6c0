"""Both charts on the local control plane: install, all-ready, upgrade, uninstall.

kwok runs no containers, so readiness means the API server accepted every object (Pod
Security "restricted" is enforced on the namespace), the controllers created the pods, the
scheduler placed them and kwok marked them Ready. `helm test` hooks need real containers:
they only run on kind (tests/e2e).
"""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.charts.helmtools import KUBE_VERSION, OPERATOR_CHART, STATIC_CHART, helm
from tests.conftest import kubectl
from tests.waiting import wait_for

pytestmark = pytest.mark.cluster

# One spec for both paths, so their figures compare: every component, GPUs off.
SPEC: dict[str, Any] = {"api": {"autoscaling": {"enabled": False}, "replicas": 2}}
INSTANCE_LABEL = "app.kubernetes.io/instance"
READY_TIMEOUT = 180
FIGURES: dict[str, float | int] = {}


def _restricted(kubeconfig: Path, namespace: str) -> None:
    kubectl(kubeconfig, "label", "namespace", namespace,
            "pod-security.kubernetes.io/enforce=restricted", "--overwrite")  # fmt: skip


def _helm(kubeconfig: Path, *args: str, timeout: float = 600) -> str:
    return helm(*args, "--kubeconfig", str(kubeconfig), timeout=timeout)


def _workloads(api: Any, namespace: str, instance: str) -> list[Any]:
    apps: Any = client.AppsV1Api(api)
    selector = f"{INSTANCE_LABEL}={instance}"
    return [
        *apps.list_namespaced_deployment(namespace, label_selector=selector).items,
        *apps.list_namespaced_stateful_set(namespace, label_selector=selector).items,
    ]


def _all_ready(api: Any, namespace: str, instance: str, *, expected: int) -> bool:
    items = _workloads(api, namespace, instance)
    if len(items) < expected:
        return False
    for w in items:
        want = w.spec.replicas if w.spec.replicas is not None else 1
        if (w.status.ready_replicas or 0) < want or (w.status.observed_generation or 0) < (
            w.metadata.generation or 0
        ):
            return False
        if getattr(w.status, "updated_replicas", want) not in (None, want):
            return False
    return True


def _leftovers(api: Any, namespace: str, instance: str) -> dict[str, list[str]]:
    """Every object of the instance still there, by kind."""
    core: Any = client.CoreV1Api(api)
    apps: Any = client.AppsV1Api(api)
    net: Any = client.NetworkingV1Api(api)
    policy: Any = client.PolicyV1Api(api)
    scaling: Any = client.AutoscalingV2Api(api)
    sel = f"{INSTANCE_LABEL}={instance}"
    listers: dict[str, Any] = {
        "Deployment": apps.list_namespaced_deployment,
        "StatefulSet": apps.list_namespaced_stateful_set,
        "Service": core.list_namespaced_service,
        "ConfigMap": core.list_namespaced_config_map,
        "Secret": core.list_namespaced_secret,
        "ServiceAccount": core.list_namespaced_service_account,
        "NetworkPolicy": net.list_namespaced_network_policy,
        "PodDisruptionBudget": policy.list_namespaced_pod_disruption_budget,
        "HorizontalPodAutoscaler": scaling.list_namespaced_horizontal_pod_autoscaler,
        "PersistentVolumeClaim": core.list_namespaced_persistent_volume_claim,
    }
    out = {kind: [i.metadata.name for i in fn(namespace, label_selector=sel).items]
           for kind, fn in listers.items()}  # fmt: skip
    return {k: v for k, v in out.items() if v}


def _wait_ready(kubeconfig: Path, api: Any, namespace: str, instance: str, expected: int) -> None:
    try:
        wait_for(lambda: _all_ready(api, namespace, instance, expected=expected),
                 timeout=READY_TIMEOUT, interval=0.5, what=f"{instance} ready")  # fmt: skip
    except AssertionError as err:
        state = kubectl(kubeconfig, "-n", namespace, "get", "deploy,sts,pods,pvc", check=False)
        events = kubectl(kubeconfig, "-n", namespace, "get", "events", "--sort-by=.lastTimestamp",
                         check=False)  # fmt: skip
        raise AssertionError(f"{err}\n{state}\n{events[-3000:]}") from None


def _secret(api: Any, namespace: str, name: str) -> dict[str, str]:
    secret: Any = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    data = secret.data or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _expected_workloads(chart_output: str) -> int:
    docs = [d for d in yaml.safe_load_all(chart_output) if isinstance(d, dict)]
    return sum(1 for d in docs if d.get("kind") in ("Deployment", "StatefulSet"))


def test_static_chart_install_upgrade_uninstall(
    kubeconfig: Path,
    api_client: Any,
    namespace: str,
    tmp_path: Path,
    helm_releases: list[tuple[str, str]],
) -> None:
    _restricted(kubeconfig, namespace)
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(SPEC))
    release = "static"
    manifest = _helm(kubeconfig, "template", release, str(STATIC_CHART), "-n", namespace,
                     "-f", str(values), "--kube-version", KUBE_VERSION)  # fmt: skip
    expected = _expected_workloads(manifest)
    FIGURES["static_objects"] = sum(
        1 for d in yaml.safe_load_all(manifest)
        if isinstance(d, dict) and "helm.sh/hook" not in (d["metadata"].get("annotations") or {})
    )  # fmt: skip

    helm_releases.append((release, namespace))
    started = time.monotonic()
    out = _helm(
        kubeconfig, "install", release, str(STATIC_CHART), "-n", namespace, "-f", str(values)
    )
    assert "NOTES:" in out and f"svc/{release}-gateway" in out  # NOTES render and point at Kong
    _wait_ready(kubeconfig, api_client, namespace, release, expected)
    FIGURES["static_install_to_ready_s"] = round(time.monotonic() - started, 1)
    print(f"\nFIGURES static chart: {FIGURES}")

    apps: Any = client.AppsV1Api(api_client)
    core: Any = client.CoreV1Api(api_client)
    keys = _secret(api_client, namespace, f"{release}-gateway-consumers")
    internal = _secret(api_client, namespace, f"{release}-internal-auth")
    redis_sts = apps.read_namespaced_stateful_set(f"{release}-redis-app", namespace)
    checksum = redis_sts.spec.template.metadata.annotations["indexforge.io/config-checksum"]

    # Upgrade: a replica count, a Redis setting (rolls its pod), monitoring switched off.
    _helm(kubeconfig, "upgrade", release, str(STATIC_CHART), "-n", namespace, "-f", str(values),
          "--set", "api.replicas=3", "--set", "redis.app.maxmemory=256mb",
          "--set", "monitoring.enabled=false")  # fmt: skip
    assert apps.read_namespaced_deployment(f"{release}-api", namespace).spec.replicas == 3
    conf = core.read_namespaced_config_map(f"{release}-redis-app-config", namespace)
    assert "maxmemory 256mb" in conf.data["redis.conf"]
    redis_sts = apps.read_namespaced_stateful_set(f"{release}-redis-app", namespace)
    assert redis_sts.spec.template.metadata.annotations["indexforge.io/config-checksum"] != checksum
    names = {w.metadata.name for w in _workloads(api_client, namespace, release)}
    assert not names & {
        f"{release}-{c}" for c in ("prometheus", "alertmanager", "grafana", "jaeger")
    }, names
    # Generated keys survive upgrades (lookup), so clients keep working.
    assert _secret(api_client, namespace, f"{release}-gateway-consumers") == keys
    assert _secret(api_client, namespace, f"{release}-internal-auth") == internal
    # Prometheus, Alertmanager, Grafana and Jaeger are gone.
    _wait_ready(kubeconfig, api_client, namespace, release, expected - 4)

    _helm(kubeconfig, "uninstall", release, "-n", namespace, "--wait", "--timeout", "3m")

    def only_pvcs() -> dict[str, list[str]] | None:
        left = _leftovers(api_client, namespace, release)
        return left if set(left) == {"PersistentVolumeClaim"} else None

    left = wait_for(only_pvcs, timeout=120, what="only retained PVCs left")
    assert sorted(left["PersistentVolumeClaim"]) == [
        f"data-{release}-{c}-0"
        for c in (
            "alertmanager",
            "grafana",
            "jaeger",
            "prometheus",
            "redis-app",
            "redis-ml",
            "redis-state",
            "weaviate",
        )
    ]


MESSAGING_SPEC: dict[str, Any] = {
    "api": {"autoscaling": {"enabled": False}, "replicas": 1},
    "gateway": {"enabled": False},
    "monitoring": {"enabled": False},
    "messaging": {"enabled": True, "rabbitmq": {"replicas": 1}},
}
BROKER_KEYS = ("rabbitmq-username", "rabbitmq-password", "rabbitmq-auth.conf",
               "rabbitmq-erlang-cookie")  # fmt: skip


def test_static_chart_messaging_install_ready_and_broker_credentials_kept(
    kubeconfig: Path,
    api_client: Any,
    namespace: str,
    tmp_path: Path,
    helm_releases: list[tuple[str, str]],
) -> None:
    """Messaging through the static chart: the broker and the workers become ready under Pod
    Security "restricted", and the broker's user and Erlang cookie survive upgrades (a node's
    database keeps its first default user; the cookie must match its peers')."""
    _restricted(kubeconfig, namespace)
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(MESSAGING_SPEC))
    release = "queued"
    manifest = _helm(kubeconfig, "template", release, str(STATIC_CHART), "-n", namespace,
                     "-f", str(values), "--kube-version", KUBE_VERSION)  # fmt: skip
    helm_releases.append((release, namespace))
    _helm(kubeconfig, "install", release, str(STATIC_CHART), "-n", namespace, "-f", str(values))
    _wait_ready(kubeconfig, api_client, namespace, release, _expected_workloads(manifest))
    names = {w.metadata.name for w in _workloads(api_client, namespace, release)}
    assert {f"{release}-rabbitmq", f"{release}-worker"} <= names
    internal = _secret(api_client, namespace, f"{release}-internal-auth")
    assert set(BROKER_KEYS) <= set(internal)
    assert f"default_pass = {internal['rabbitmq-password']}\n" in internal["rabbitmq-auth.conf"]

    _helm(kubeconfig, "upgrade", release, str(STATIC_CHART), "-n", namespace, "-f", str(values),
          "--set", "messaging.workers.maxReplicas=4")  # fmt: skip
    after = _secret(api_client, namespace, f"{release}-internal-auth")
    assert {k: after[k] for k in BROKER_KEYS} == {k: internal[k] for k in BROKER_KEYS}
    scaling: Any = client.AutoscalingV2Api(api_client)
    hpa = scaling.read_namespaced_horizontal_pod_autoscaler(f"{release}-worker", namespace)
    assert hpa.spec.max_replicas == 4
    _helm(kubeconfig, "uninstall", release, "-n", namespace, "--wait", "--timeout", "3m")


@pytest.mark.usefixtures("operator_process")
def test_operator_chart_install_with_indexforge(
    kubeconfig: Path,
    api_client: Any,
    namespace: str,
    tmp_path: Path,
    helm_releases: list[tuple[str, str]],
) -> None:
    """The operator chart with an IndexForge of the same spec; the test session's operator
    process reconciles it (the chart's Deployment is a kwok pod: no container runs)."""
    _restricted(kubeconfig, namespace)
    release, name = f"op-{uuid.uuid4().hex[:6]}", "viaop"  # its ClusterRole is cluster-wide
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({
        "indexforge": {"enabled": True, "name": name, "spec": SPEC},
        "watchNamespaces": [namespace],
    }))  # fmt: skip
    helm_releases.append((release, namespace))
    started = time.monotonic()
    out = _helm(kubeconfig, "install", release, str(OPERATOR_CHART), "-n", namespace,
                "-f", str(values), "--wait", "--timeout", "3m")  # fmt: skip
    assert "NOTES:" in out and f"indexforge/{name}" in out

    def cr_ready() -> bool:
        custom: Any = client.CustomObjectsApi(api_client)
        cr = custom.get_namespaced_custom_object(
            "indexforge.io", "v1alpha1", namespace, "indexforges", name)  # fmt: skip
        conds = {c["type"]: c["status"] for c in cr.get("status", {}).get("conditions", [])}
        return conds.get("Ready") == "True"

    try:
        wait_for(cr_ready, timeout=READY_TIMEOUT, interval=0.5, what="IndexForge Ready")
    except AssertionError as err:
        status = kubectl(kubeconfig, "-n", namespace, "get", "indexforge", name, "-o",
                         "jsonpath={.status}", check=False)  # fmt: skip
        raise AssertionError(f"{err}\n{status[-3000:]}") from None
    FIGURES["operator_install_to_ready_s"] = round(time.monotonic() - started, 1)
    assert _all_ready(api_client, namespace, name, expected=1)
    operator: Any = client.AppsV1Api(api_client).read_namespaced_deployment(
        f"{release}-indexforge-operator", namespace)  # fmt: skip
    assert operator.status.ready_replicas == 2  # leader + standby (leader election)
    FIGURES["operator_children"] = sum(len(v) for k, v in
                                       _leftovers(api_client, namespace, name).items()
                                       if k != "PersistentVolumeClaim")  # fmt: skip
    print(f"\nFIGURES operator path: {FIGURES}")

    # Upgrade: the CR's spec (the operator rolls it out) and an operator setting.
    spec = {**SPEC, "api": {**SPEC["api"], "replicas": 3}}
    values.write_text(yaml.safe_dump({
        "indexforge": {"enabled": True, "name": name, "spec": spec},
        "watchNamespaces": [namespace], "resyncSeconds": 10,
    }))  # fmt: skip
    _helm(kubeconfig, "upgrade", release, str(OPERATOR_CHART), "-n", namespace, "-f", str(values))
    apps: Any = client.AppsV1Api(api_client)
    wait_for(lambda: apps.read_namespaced_deployment(f"{name}-api", namespace).spec.replicas == 3,
             timeout=60, what="operator applied the upgraded spec")  # fmt: skip
    env = apps.read_namespaced_deployment(f"{release}-indexforge-operator", namespace).spec
    variables = {e.name: e.value for e in env.template.spec.containers[0].env}
    assert variables["INDEXFORGE_RESYNC_SECONDS"] == "10"

    _helm(kubeconfig, "uninstall", release, "-n", namespace, "--wait", "--timeout", "3m")

    def only_pvcs() -> dict[str, list[str]] | None:
        left = _leftovers(api_client, namespace, name)
        return left if set(left) == {"PersistentVolumeClaim"} else None

    wait_for(only_pvcs, timeout=180, interval=1, what="children garbage-collected, PVCs kept")
    assert _leftovers(api_client, namespace, release) == {}
    # The CRD stays (crds/ is never deleted by helm): deleting it would delete every IndexForge.
    kubectl(kubeconfig, "get", "crd", "indexforges.indexforge.io")

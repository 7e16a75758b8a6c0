"""The operator against a real API server: apply a CR, reach Ready, keep it there.

kwok marks pods Running (no container runtime here), so "Ready" means the API server, the
controllers and the scheduler accepted and placed everything the operator asked for.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from indexforge_operator.naming import LABEL_COMPONENT, Names
from tests import reference
from tests.conftest import REACTION_SECONDS, REPO_ROOT, kubectl
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]

SAMPLE = REPO_ROOT / "manifests" / "samples" / "indexforge.yaml"
GROUP, VERSION, PLURAL = "indexforge.io", "v1alpha1", "indexforges"
MANAGED = "app.kubernetes.io/managed-by=indexforge-operator"


def _sample(namespace: str, name: str = "demo", **spec_overrides: Any) -> dict[str, Any]:
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["metadata"] = {"name": name, "namespace": namespace}
    doc["spec"] = _deep_merge(doc.get("spec") or {}, spec_overrides)
    return doc


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def _apply(kubeconfig: Path, doc: dict[str, Any]) -> None:
    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))


def _cr(api_client, namespace: str, name: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )


def _condition(cr: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in cr.get("status", {}).get("conditions", []) if c["type"] == ctype), None)


def _wait_ready(api_client, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    def ready() -> dict[str, Any] | None:
        cr = _cr(api_client, namespace, name)
        cond = _condition(cr, "Ready")
        gen_ok = cr.get("status", {}).get("observedGeneration") == cr["metadata"]["generation"]
        return cr if cond and cond["status"] == "True" and gen_ok else None

    return wait_for(ready, timeout=timeout, what=f"IndexForge {namespace}/{name} Ready")


def _our_field_entries(api_client, namespace: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Per child, the operator's managedFields entry: it changes only when our apply changed
    something. (resourceVersion alone also moves for HPA scaling and status updates.)"""
    apps = client.AppsV1Api(api_client)
    out: dict[str, str] = {}
    for kind, items in (
        ("Deployment", apps.list_namespaced_deployment(namespace, label_selector=MANAGED).items),
        ("StatefulSet", apps.list_namespaced_stateful_set(namespace, label_selector=MANAGED).items),
    ):
        for item in items:
            ours = [
                m
                for m in item.metadata.managed_fields or []
                if m.manager == "indexforge-operator" and m.operation == "Apply"
            ]
            assert ours, f"{kind}/{item.metadata.name} has no entry of our field manager"
            out[f"{kind}/{item.metadata.name}"] = f"{ours[0].time} {ours[0].fields_v1}"
    return out


def _children_versions(api_client, namespace: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api_client)
    versions: dict[str, str] = {}
    for kind, items in (
        ("Service", core.list_namespaced_service(namespace, label_selector=MANAGED).items),
        ("ConfigMap", core.list_namespaced_config_map(namespace, label_selector=MANAGED).items),
        ("Secret", core.list_namespaced_secret(namespace, label_selector=MANAGED).items),
    ):
        for item in items:
            versions[f"{kind}/{item.metadata.name}"] = item.metadata.resource_version
    return versions


def wait_workloads_gone(api_client, namespace: str, *, what: str) -> None:  # type: ignore[no-untyped-def]
    """Until no Deployment or StatefulSet is left in the namespace (garbage collection)."""
    apps = client.AppsV1Api(api_client)
    wait_for(
        lambda: (
            not apps.list_namespaced_deployment(namespace).items
            and not apps.list_namespaced_stateful_set(namespace).items
        ),
        timeout=90,
        what=what,
    )


@pytest.fixture
def ready_instance(api_client, kubeconfig: Path, namespace: str) -> tuple[str, Names]:  # type: ignore[no-untyped-def]
    _apply(kubeconfig, _sample(namespace))
    _wait_ready(api_client, namespace, "demo")
    return namespace, Names("demo", namespace)


def test_sample_reaches_ready_with_every_child_and_ml_on_the_gpu_node(
    api_client, kubeconfig: Path, namespace: str
) -> None:
    started = time.monotonic()
    _apply(kubeconfig, _sample(namespace))
    waited = kubectl(
        kubeconfig, "-n", namespace, "wait", "--for=condition=Ready", "indexforge/demo",
        "--timeout=150s",
    )  # fmt: skip
    assert "condition met" in waited
    print(f"apply -> Ready: {time.monotonic() - started:.1f}s")
    cr = _cr(api_client, namespace, "demo")
    assert cr["status"]["phase"] == "Ready"
    assert cr["status"]["observedGeneration"] == cr["metadata"]["generation"]
    types = {c["type"] for c in cr["status"]["conditions"]}
    assert {"Ready", "Progressing", "Degraded", "APIAvailable", "MLAvailable"} <= types

    names = Names("demo", namespace)
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    deployments = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
    statefulsets = {s.metadata.name for s in apps.list_namespaced_stateful_set(namespace).items}
    assert {names.component(c) for c in ("api", "ml", "excel", "gateway")} <= deployments
    assert {names.component(c) for c in ("redis-app", "redis-ml", "weaviate")} <= statefulsets
    for dep in apps.list_namespaced_deployment(namespace).items:
        owners = dep.metadata.owner_references or []
        assert [o.kind for o in owners] == ["IndexForge"], dep.metadata.name

    ml_pods = core.list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/component=ml"
    ).items
    assert ml_pods and all(p.status.phase == "Running" for p in ml_pods)
    for pod in ml_pods:
        node = core.read_node(pod.spec.node_name)
        assert node.metadata.labels.get("nvidia.com/gpu.present") == "true"


def _terminating(api_client) -> list[str]:  # type: ignore[no-untyped-def]
    namespaces = client.CoreV1Api(api_client).list_namespace().items
    return [n.metadata.name for n in namespaces if n.status.phase == "Terminating"]


def test_a_no_op_pass_sends_no_request_and_writes_nothing(
    api_client, operator_process: OperatorProcess, ready_instance: tuple[str, Names]
) -> None:
    """A child event triggers a pass; with nothing drifted it answers from the watch cache."""
    namespace, names = ready_instance
    # The request counter is the operator's, not this CR's: CRs of earlier tests whose
    # namespaces are still being deleted get passes too. Measure once they are gone.
    wait_for(lambda: not _terminating(api_client), timeout=180,
             what="earlier tests' namespaces deleted")  # fmt: skip
    time.sleep(3)  # let the post-Ready status settle
    before = _children_versions(api_client, namespace)
    ours_before = _our_field_entries(api_client, namespace)
    cr_before = _cr(api_client, namespace, "demo")["metadata"]["resourceVersion"]
    passes = operator_process.metric("indexforge_operator_reconciles_total")
    requests = operator_process.pass_requests()
    # A label that is not ours: a watch event for the child, but no drift.
    apps = client.AppsV1Api(api_client)
    apps.patch_namespaced_deployment(
        names.component("excel"), namespace, {"metadata": {"labels": {"team": "search"}}}
    )
    wait_for(
        lambda: operator_process.metric("indexforge_operator_reconciles_total") > passes,
        timeout=REACTION_SECONDS,
        what="a pass triggered by the child's watch event",
    )
    time.sleep(2)
    assert operator_process.pass_requests() == requests
    assert _children_versions(api_client, namespace) == before
    # Workloads are also written by controllers (status, HPA scale): our entry must not move.
    assert _our_field_entries(api_client, namespace) == ours_before
    assert _cr(api_client, namespace, "demo")["metadata"]["resourceVersion"] == cr_before


def test_deleted_deployment_is_restored(api_client, ready_instance: tuple[str, Names]) -> None:
    namespace, names = ready_instance
    apps = client.AppsV1Api(api_client)
    old_uid = apps.read_namespaced_deployment(names.component("api"), namespace).metadata.uid
    apps.delete_namespaced_deployment(names.component("api"), namespace)

    def recreated() -> bool:
        try:
            dep = apps.read_namespaced_deployment(names.component("api"), namespace)
        except ApiException:
            return False
        return dep.metadata.uid != old_uid

    wait_for(recreated, timeout=REACTION_SECONDS, what="api Deployment recreated")


def test_hand_scaled_deployment_is_reverted(api_client, ready_instance: tuple[str, Names]) -> None:
    namespace, names = ready_instance
    apps = client.AppsV1Api(api_client)
    name = names.component("excel")
    want = apps.read_namespaced_deployment(name, namespace).spec.replicas
    apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": want + 3}})
    wait_for(
        lambda: apps.read_namespaced_deployment(name, namespace).spec.replicas == want,
        timeout=REACTION_SECONDS,
        what=f"{name} scaled back to {want}",
    )


def test_edited_kong_config_secret_is_restored(
    api_client, ready_instance: tuple[str, Names]
) -> None:
    namespace, names = ready_instance
    core = client.CoreV1Api(api_client)
    secret_name = names.config("gateway")
    original = core.read_namespaced_secret(secret_name, namespace).data
    key = next(iter(original))
    tampered = base64.b64encode(b"_format_version: '3.0'\n").decode()
    core.patch_namespaced_secret(secret_name, namespace, {"data": {key: tampered}})
    wait_for(
        lambda: core.read_namespaced_secret(secret_name, namespace).data[key] == original[key],
        timeout=REACTION_SECONDS,
        what="Kong config Secret restored",
    )


def test_spec_change_reaches_child_and_config_change_rolls_pods(
    api_client, kubeconfig: Path, ready_instance: tuple[str, Names]
) -> None:
    namespace, names = ready_instance
    apps = client.AppsV1Api(api_client)
    gateway = names.component("gateway")
    template_before = apps.read_namespaced_deployment(gateway, namespace).spec.template
    checksum_before = dict(template_before.metadata.annotations or {})

    _apply(
        kubeconfig,
        _sample(
            namespace,
            api={"replicas": 3, "autoscaling": {"enabled": False}},
            gateway={"rateLimiting": {"apiPerMinute": 120}},
        ),
    )
    wait_for(
        lambda: (
            apps.read_namespaced_deployment(names.component("api"), namespace).spec.replicas == 3
        ),
        timeout=60,
        what="api replicas 3",
    )

    def rolled() -> bool:
        annotations = apps.read_namespaced_deployment(
            gateway, namespace
        ).spec.template.metadata.annotations
        return bool(annotations) and annotations != checksum_before

    wait_for(rolled, timeout=60, what="gateway pod template checksum changed")
    core = client.CoreV1Api(api_client)
    config = core.read_namespaced_secret(names.config("gateway"), namespace).data
    text = "".join(base64.b64decode(v).decode() for v in config.values())
    assert "120" in text
    _wait_ready(api_client, namespace, "demo")


def test_gpu_request_larger_than_any_node_reports_insufficient_gpu(
    api_client, kubeconfig: Path, namespace: str
) -> None:
    _apply(kubeconfig, _sample(namespace, name="greedy", ml={"gpu": {"enabled": True, "count": 8}}))

    def insufficient() -> dict[str, Any] | None:
        cond = _condition(_cr(api_client, namespace, "greedy"), "MLAvailable")
        return cond if cond and cond["reason"] == "InsufficientGPU" else None

    cond = wait_for(insufficient, timeout=120, what="MLAvailable=False/InsufficientGPU")
    assert cond["status"] == "False"
    assert "nvidia.com/gpu" in cond["message"]
    cr = _cr(api_client, namespace, "greedy")
    assert _condition(cr, "Ready")["status"] == "False"
    # Nothing else broke: the API still comes up (its HPA floor may take one HPA sync).
    wait_for(
        lambda: (
            _condition(_cr(api_client, namespace, "greedy"), "APIAvailable")["status"] == "True"
        ),
        timeout=60,
        what="APIAvailable=True beside the GPU shortage",
    )


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deleting_the_cr_collects_children_and_honours_pvc_policy(
    api_client, kubeconfig: Path, namespace: str, policy: str
) -> None:
    _apply(kubeconfig, _sample(namespace, deletionPolicy=policy))
    _wait_ready(api_client, namespace, "demo")
    core = client.CoreV1Api(api_client)
    pvcs_before = {
        p.metadata.name for p in core.list_namespaced_persistent_volume_claim(namespace).items
    }
    assert pvcs_before, "the stack should have PVCs"

    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "demo"
    )
    wait_workloads_gone(api_client, namespace, what="children garbage-collected")
    if policy == "Retain":
        time.sleep(3)
        left = {
            p.metadata.name for p in core.list_namespaced_persistent_volume_claim(namespace).items
        }
        assert left == pvcs_before
    else:
        wait_for(
            lambda: not core.list_namespaced_persistent_volume_claim(namespace).items,
            timeout=90,
            what="PVCs deleted under Delete policy",
        )


def test_ready_transition_is_recorded_as_an_event(
    api_client, ready_instance: tuple[str, Names]
) -> None:
    namespace, _ = ready_instance
    core = client.CoreV1Api(api_client)

    def ready_events() -> list[Any]:
        events = core.list_namespaced_event(
            namespace, field_selector="involvedObject.kind=IndexForge,involvedObject.name=demo"
        ).items
        return [e for e in events if e.reason == "AllComponentsAvailable"]

    event = wait_for(ready_events, timeout=30, what="AllComponentsAvailable event")[0]
    assert event.type == "Normal"
    assert "Ready=True" in event.message


def test_paused_cr_makes_no_writes_until_resumed(
    api_client, kubeconfig: Path, ready_instance: tuple[str, Names]
) -> None:
    namespace, names = ready_instance
    apps = client.AppsV1Api(api_client)
    kubectl(kubeconfig, "-n", namespace, "annotate", "indexforge/demo", "indexforge.io/paused=true")

    def paused() -> bool:
        return _cr(api_client, namespace, "demo").get("status", {}).get("phase") == "Paused"

    wait_for(paused, timeout=30, what="phase Paused")
    progressing = _condition(_cr(api_client, namespace, "demo"), "Progressing")
    assert progressing is not None and progressing["reason"] == "Paused"

    excel = names.component("excel")
    apps.delete_namespaced_deployment(excel, namespace)
    time.sleep(5)
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment(excel, namespace)
    assert err.value.status == 404  # paused: drift is left alone

    kubectl(kubeconfig, "-n", namespace, "annotate", "indexforge/demo", "indexforge.io/paused-")
    wait_for(
        lambda: apps.read_namespaced_deployment(excel, namespace),
        timeout=REACTION_SECONDS,
        what="excel Deployment restored after resume",
    )
    _wait_ready(api_client, namespace, "demo")


def test_missing_sentry_secret_degrades_until_it_exists(
    api_client, kubeconfig: Path, namespace: str
) -> None:
    sentry = {"enabled": True, "dsnSecretRef": {"name": "sentry", "key": "dsn"}}
    _apply(kubeconfig, _sample(namespace, sentry=sentry))

    def degraded() -> dict[str, Any] | None:
        cond = _condition(_cr(api_client, namespace, "demo"), "Degraded")
        return cond if cond and cond["reason"] == "SentrySecretMissing" else None

    cond = wait_for(degraded, timeout=60, what="Degraded/SentrySecretMissing")
    assert cond["status"] == "True" and "'sentry'" in cond["message"]
    assert _cr(api_client, namespace, "demo")["status"]["phase"] == "Degraded"

    client.CoreV1Api(api_client).create_namespaced_secret(
        namespace,
        {"metadata": {"name": "sentry"}, "stringData": {"dsn": "https://k@sentry.invalid/1"}},
    )
    _wait_ready(api_client, namespace, "demo")


def test_missing_alertmanager_secret_degrades_until_it_exists(
    api_client, kubeconfig: Path, namespace: str
) -> None:
    """The receivers Secret is referenced, never copied: missing -> Degraded; created -> the
    user-Secret watch re-triggers a pass and its key names (not values) shape the config."""
    alerting = {"receiversSecretRef": {"name": "alert-receivers"}}
    _apply(kubeconfig, _sample(namespace, monitoring={"alertmanager": alerting}))

    def degraded() -> dict[str, Any] | None:
        cond = _condition(_cr(api_client, namespace, "demo"), "Degraded")
        return cond if cond and cond["reason"] == "AlertmanagerSecretMissing" else None

    cond = wait_for(degraded, timeout=60, what="Degraded/AlertmanagerSecretMissing")
    assert "'alert-receivers'" in cond["message"]
    value = "https://hooks.slack.invalid/services/T000/B000/XXXX"
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "alert-receivers"}, "stringData": {"slack-api-url": value}},
    )
    _wait_ready(api_client, namespace, "demo")
    names = Names("demo", namespace)

    def config() -> str | None:
        data = core.read_namespaced_secret(names.config("alertmanager"), namespace).data
        text = base64.b64decode(data["alertmanager.yml"]).decode()
        return text if "slack_configs" in text else None

    text = wait_for(config, timeout=60, what="slack receiver in alertmanager.yml")
    assert "/etc/alertmanager/receivers/slack-api-url" in text and value not in text
    sts = client.AppsV1Api(api_client).read_namespaced_stateful_set(
        names.component("alertmanager"), namespace
    )
    volumes = {v.name: v for v in sts.spec.template.spec.volumes}
    assert volumes["receivers"].secret.secret_name == "alert-receivers"


def test_generated_keys_never_reach_status_events_or_logs(
    api_client, operator_process: OperatorProcess, ready_instance: tuple[str, Names]
) -> None:
    namespace, names = ready_instance
    core = client.CoreV1Api(api_client)
    data = core.read_namespaced_secret(names.gateway_consumers, namespace).data
    keys = [base64.b64decode(v).decode() for v in data.values()]
    assert keys and all(len(k) >= 32 for k in keys)
    # The declarative Kong config (a Secret) is the one place the keys must be.
    kong = core.read_namespaced_secret(names.config("gateway"), namespace).data
    kong_text = "".join(base64.b64decode(v).decode() for v in kong.values())
    assert all(k in kong_text for k in keys)

    status_text = json.dumps(_cr(api_client, namespace, "demo").get("status", {}))
    events_text = json.dumps(
        [e.message for e in core.list_namespaced_event(namespace).items], default=str
    )
    log_text = operator_process.log_path.read_text(errors="replace")
    internal = core.read_namespaced_secret(names.internal_auth, namespace).data
    # The broker's user name is a fixed, public name ("indexforge"), not a generated value.
    internal_values = [
        base64.b64decode(v).decode().strip()
        for k, v in internal.items()
        if k != "rabbitmq-username"
    ]
    keys += [v for v in internal_values if "\n" not in v]  # the plain values, not conf files
    assert len(keys) >= 5
    for key in keys:
        assert key not in status_text
        assert key not in events_text
        assert key not in log_text


def test_operator_exports_reconcile_metrics(
    operator_process: OperatorProcess, ready_instance: tuple[str, Names]
) -> None:
    import urllib.request

    namespace, _ = ready_instance
    url = operator_process.metrics_url
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['indexforge_operator_reconciles_total{result="ok"}'] >= 1
    assert samples["indexforge_operator_object_writes_total"] >= 59
    assert samples["indexforge_operator_reconcile_duration_seconds_count"] >= 1
    ready = f'indexforge_operator_instance_ready{{name="demo",namespace="{namespace}"}}'
    assert samples[ready] == 1.0  # set before the status write that made the CR Ready


def _monitoring_crds() -> list[dict[str, Any]]:
    """The real prometheus-operator CRDs (reference data), so the ServiceMonitors and the
    PrometheusRule the operator applies are validated by their real schemas."""
    wanted = ("servicemonitors", "prometheusrules", "alertmanagerconfigs")
    return [
        reference.load_crd(path)
        for path in reference.crd_files("prometheus-operator")
        if any(path.name.endswith(f"_{plural}.yaml") for plural in wanted)
    ]


def _crd_established(api_client, name: str) -> bool:  # type: ignore[no-untyped-def]
    crd = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(name)
    return any(
        c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])
    )


def _assert_no_bypass(api_client, namespace: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 10's bypass, checked on the objects the API server stores: no ingress rule
    without a source, and the outside scraper only on metrics ports."""
    policies = client.NetworkingV1Api(api_client).list_namespaced_network_policy(namespace).items
    serving = {"api": 8000, "ml": 8080, "excel": 8000}
    for policy in policies:
        component = (policy.spec.pod_selector.match_labels or {}).get(LABEL_COMPONENT)
        for rule in policy.spec.ingress or []:
            if component in serving:
                assert rule._from, f"{policy.metadata.name}: ingress without a source"
            outside = [p for p in rule._from or [] if p.namespace_selector is not None]
            if outside and component in serving:
                assert serving[component] not in [p.port for p in rule.ports], policy.metadata.name


# Last in this module on purpose: while these CRDs exist every IndexForge switches mode.
def test_prometheus_operator_crds_switch_to_service_monitors(
    api_client, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    crds = _monitoring_crds()
    assert len(crds) == 3
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds))
    try:
        names = [crd["metadata"]["name"] for crd in crds]
        wait_for(lambda: all(_crd_established(api_client, n) for n in names), timeout=30,
                 what="prometheus-operator CRDs established")  # fmt: skip
        # Every receiver, so the AlertmanagerConfig's Secret references meet the real schema.
        client.CoreV1Api(api_client).create_namespaced_secret(namespace, {
            "metadata": {"name": "alert-receivers"},
            "stringData": {k: "x" for k in ("slack-api-url", "pagerduty-routing-key",
                                             "webhook-bearer-token", "smtp-auth-password")},
        })  # fmt: skip
        alerting = {
            "receiversSecretRef": {"name": "alert-receivers"},
            "webhookUrl": "https://hooks.example.com/indexforge",
            "slackChannel": "#ops",
            "email": {"to": "oncall@example.com", "fromAddress": "am@example.com",
                      "smarthost": "smtp.example.com:587", "authUsername": "am"},
        }  # fmt: skip
        _apply(kubeconfig, _sample(namespace, monitoring={"alertmanager": alerting}))
        custom = client.CustomObjectsApi(api_client)

        def monitors() -> list[Any]:
            return custom.list_namespaced_custom_object(
                "monitoring.coreos.com", "v1", namespace, "servicemonitors"
            )["items"]

        found = wait_for(monitors, timeout=60, what="ServiceMonitors applied")
        assert all(m["metadata"]["ownerReferences"][0]["kind"] == "IndexForge" for m in found)
        rules = wait_for(
            lambda: custom.list_namespaced_custom_object(
                "monitoring.coreos.com", "v1", namespace, "prometheusrules"
            )["items"],
            timeout=30,
            what="PrometheusRule applied",
        )
        assert len(rules) == 1 and rules[0]["spec"]["groups"]
        configs = wait_for(
            lambda: custom.list_namespaced_custom_object(
                "monitoring.coreos.com", "v1alpha1", namespace, "alertmanagerconfigs"
            )["items"],
            timeout=30,
            what="AlertmanagerConfig applied",
        )
        (amc,) = configs
        critical, warning = amc["spec"]["receivers"]
        assert {"pagerdutyConfigs", "slackConfigs", "webhookConfigs"} <= set(critical)
        assert {"slackConfigs", "emailConfigs", "webhookConfigs"} <= set(warning)
        assert critical["pagerdutyConfigs"][0]["routingKey"] == {
            "name": "alert-receivers", "key": "pagerduty-routing-key"
        }  # fmt: skip
        cr = _wait_ready(api_client, namespace, "demo")
        assert cr["status"]["mode"] == "PrometheusOperator"
        assert _condition(cr, "Monitoring")["reason"] == "MonitoringPrometheusOperator"
        deployments = client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items
        assert "demo-prometheus" not in {d.metadata.name for d in deployments}
        statefulsets = client.AppsV1Api(api_client).list_namespaced_stateful_set(namespace).items
        # Prometheus and Alertmanager are StatefulSets in standalone mode: neither exists here.
        assert not {"demo-prometheus", "demo-alertmanager"} & {
            s.metadata.name for s in statefulsets
        }
        assert all(e["port"] == "metrics" or e["port"] == "status"
                   for m in found for e in m["spec"]["endpoints"])  # fmt: skip
        _assert_no_bypass(api_client, namespace)
    finally:
        kubectl(kubeconfig, "delete", "-f", "-", "--timeout=120s",
                stdin=yaml.safe_dump_all(crds))  # fmt: skip
    # prometheus-operator uninstalled under a running operator: its watches of the deleted
    # kinds answer 404 until discovery drops them (kopf_compat), the operator stays up and
    # the instance switches back to its own Prometheus.
    cr = wait_for(
        lambda: (
            (c := _cr(api_client, namespace, "demo"))
            and c.get("status", {}).get("mode") == "Standalone"
            and c
        ),
        timeout=90,
        what="mode back to Standalone after the CRDs were deleted",
    )
    assert operator_process.alive(), operator_process.log_tail()
    _wait_ready(api_client, namespace, "demo")
    assert _condition(cr, "Monitoring")["reason"] != "MonitoringPrometheusOperator"

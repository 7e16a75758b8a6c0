"""Third-party objects of messaging against their real CRDs on the local API server.

The RabbitMQ cluster operator's `RabbitmqCluster`, the messaging topology operator's `User`,
`Permission`, `Exchange`, `Queue` and `Binding`, and KEDA's `ScaledObject` and
`TriggerAuthentication` CRDs are read from `../shared/reference/crds/` (never copied), applied,
and every object the builders produce for them is created with strict field validation: the
real schemas (types, enums, required fields, unknown keys) judge them. A deliberately wrong
object shows the check can fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexforge_operator.builders.messaging import build_rabbitmq_cluster, build_workers
from indexforge_operator.builders.rabbitmq_topology import build_rabbitmq_topology
from indexforge_operator.decisions import resolve_integrations
from indexforge_operator.generated import GeneratedSecrets
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests import reference
from tests.conftest import kubectl
from tests.waiting import wait_for

TOPOLOGY_PLURALS = ("users", "permissions", "exchanges", "queues", "bindings")
SPECS = {
    "defaults": {"messaging": {"enabled": True}},
    "one-node-no-pvc": {
        "messaging": {
            "enabled": True,
            "rabbitmq": {"replicas": 1, "persistence": {"enabled": False}},
            "workers": {"minReplicas": 0, "maxReplicas": 3, "messagesPerWorker": 5},
        }
    },
    "storage-class-and-pull-secrets": {
        "imagePullSecrets": ["regcred"],
        "messaging": {
            "enabled": True,
            "rabbitmq": {"persistence": {"storageClassName": "fast-ssd", "size": "50Gi"}},
        },
    },
}


def _crds() -> list[dict[str, Any]]:
    wanted = ("rabbitmqclusters", *TOPOLOGY_PLURALS, "scaledobjects", "triggerauthentications")
    return [
        reference.load_crd(path)
        for group in ("rabbitmq", "keda")
        for path in reference.crd_files(group)
        if any(path.name.endswith(f"_{plural}.yaml") for plural in wanted)
    ]


@pytest.fixture(scope="module")
def messaging_crds(kubeconfig: Path) -> Iterator[list[str]]:
    crds = _crds()
    assert len(crds) == 8, [c["metadata"]["name"] for c in crds]
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds))
    names = [c["metadata"]["name"] for c in crds]

    def established() -> bool:
        out = kubectl(kubeconfig, "get", "crd", *names, "-o", "json")
        items = json.loads(out)["items"]
        return len(items) == len(names) and all(
            any(c["type"] == "Established" and c["status"] == "True"
                for c in item.get("status", {}).get("conditions", []))
            for item in items
        )  # fmt: skip

    wait_for(established, timeout=30, what="RabbitMQ and KEDA CRDs established")
    try:
        yield names
    finally:
        kubectl(kubeconfig, "delete", "crd", *names, "--timeout=120s", check=False)


def _third_party(raw: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    spec = resolve_integrations(
        IndexForgeSpec.model_validate(raw), rabbitmq_cluster=True, keda=True
    )
    names = Names(instance="demo", namespace=namespace)
    objs = [*build_rabbitmq_cluster(spec, names), *build_workers(spec, names)]
    return [o for o in objs if o["apiVersion"].startswith(("rabbitmq.com/", "keda.sh/"))]


def _create(kubeconfig: Path, namespace: str, objs: list[dict[str, Any]]) -> str:
    return kubectl(
        kubeconfig, "create", "-n", namespace, "--validate=strict", "-f", "-",
        stdin=yaml.safe_dump_all(objs), check=False,
    )  # fmt: skip


@pytest.mark.parametrize("case", sorted(SPECS))
def test_rabbitmq_cluster_and_keda_objects_pass_the_real_schemas(
    kubeconfig: Path, namespace: str, messaging_crds: list[str], case: str
) -> None:
    objs = _third_party(SPECS[case], namespace)
    kinds = sorted(o["kind"] for o in objs)
    expected = ["RabbitmqCluster", "ScaledObject", "TriggerAuthentication"]
    assert kinds == expected, kinds
    out = _create(kubeconfig, namespace, objs)
    assert out.count("created") == 3, out
    stored = json.loads(
        kubectl(kubeconfig, "get", "-n", namespace, "rabbitmqclusters", "-o", "json")
    )
    (cluster,) = stored["items"]
    assert cluster["spec"]["replicas"] == objs[0]["spec"]["replicas"]


def test_a_wrong_object_is_refused(
    kubeconfig: Path, namespace: str, messaging_crds: list[str]
) -> None:
    objs = _third_party(SPECS["defaults"], namespace)
    cluster = next(o for o in objs if o["kind"] == "RabbitmqCluster")
    cluster["spec"]["replica"] = 3  # typo: not in the schema
    scaled = next(o for o in objs if o["kind"] == "ScaledObject")
    del scaled["spec"]["scaleTargetRef"]  # required
    out = _create(kubeconfig, namespace, [cluster, scaled])
    assert 'unknown field "spec.replica"' in out, out
    assert "scaleTargetRef" in out and "Required value" in out, out


def test_topology_objects_pass_the_real_schemas(
    kubeconfig: Path, namespace: str, messaging_crds: list[str]
) -> None:
    """The messaging topology operator's objects (with a 12-attempt policy: more retry queues)."""
    raw = {"messaging": {"enabled": True, "workers": {"maxAttempts": 12}}}
    spec = resolve_integrations(
        IndexForgeSpec.model_validate(raw), rabbitmq_cluster=True, keda=True, rabbitmq_topology=True
    )
    names = Names(instance="demo", namespace=namespace)
    built = build_rabbitmq_topology(
        spec, names, secrets=GeneratedSecrets(rabbitmq_password="not-a-real-password")
    )
    objs = [o for o in built if o["apiVersion"] == "rabbitmq.com/v1beta1"]
    assert {o["kind"] for o in objs} == {"User", "Permission", "Exchange", "Queue", "Binding"}
    out = _create(kubeconfig, namespace, objs)
    assert out.count("created") == len(objs), out
    stored = json.loads(kubectl(kubeconfig, "get", "-n", namespace, "queues", "-o", "json"))
    by_name = {q["spec"]["name"]: q["spec"] for q in stored["items"]}
    assert by_name["indexforge.ingest"]["arguments"]["x-delivery-limit"] == 10
    assert by_name["indexforge.ingest"]["type"] == "quorum"
    # A wrong one is refused: an unknown field and a destinationType outside the enum.
    binding = next(o for o in objs if o["kind"] == "Binding")
    binding["metadata"]["name"] += "-wrong"
    typo = {**binding, "spec": {**binding["spec"], "routingkey": "typo"}}
    assert 'unknown field "spec.routingkey"' in (out := _create(kubeconfig, namespace, [typo])), out
    binding["spec"]["destinationType"] = "topic"
    out = _create(kubeconfig, namespace, [binding])
    assert "destinationType" in out and "Unsupported value" in out, out

"""Weaviate API-key rotation through the real operator on the local control plane: no
client request is refused, Weaviate's pods restart one at a time (twice: to accept the new
key beside the old, then without the old one), nothing else restarts, and an operator restart
mid-rotation resumes.

Real: the operator process (its own ServiceAccount and RBAC), the API server, the
internal-auth Secret and the state Secret it writes, the annotation, status and Events, the
Weaviate StatefulSet and kube-controller-manager's rolling update of it (kwok marks the pods
Ready; the controller replaces one pod at a time and waits for it to be Ready).

Simulated (no container runtime): what a pod's Weaviate accepts and what a client sends.
``Fleet`` records, when a Weaviate pod appears, the key list its container would start with
(its AUTHENTICATION_APIKEY_ALLOWED_KEYS reference resolved against the Secret at that moment,
as the kubelet does); ``Fleet`` also plays a client that reads the Secret's `weaviate-api-key`
(its mounted file, synced within a fraction of a second; a real kubelet lags up to a minute,
which `gracePeriodSeconds` must cover) and checks it against every Ready pod, as a Service
would route to any of them. That Weaviate itself accepts such a list and refuses the old key
after is tests/services/test_weaviate_key_rotation.py.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from indexforge_operator.naming import Names
from indexforge_operator.weaviate_rotation import ANNOTATION
from tests.conftest import kubectl
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

from .test_key_rotation import _events
from .test_operator import _apply, _condition, _cr, _sample, _wait_ready

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]
GRACE = 15
SELECTOR = "app.kubernetes.io/component=weaviate,app.kubernetes.io/instance=demo"


class Fleet(threading.Thread):
    """The Weaviate pods' accepted keys and a client's requests (see the module docstring)."""

    def __init__(self, api_client: Any, namespace: str, names: Names) -> None:
        super().__init__(daemon=True)
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.names = namespace, names
        self.accepted: dict[str, list[str]] = {}  # pod uid -> keys its Weaviate started with
        self.ok = self.failed = 0
        self.failures: list[str] = []
        self.fewest_ready = 3  # a rolling restart takes one pod out at a time
        self.stop = threading.Event()

    def secret(self) -> dict[str, str]:
        secret = self.core.read_namespaced_secret(self.names.internal_auth, self.namespace)
        return {k: base64.b64decode(v).decode() for k, v in secret.data.items()}

    def step(self) -> None:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=SELECTOR).items
        data = self.secret()
        for pod in pods:
            if pod.metadata.uid in self.accepted or pod.metadata.deletion_timestamp:
                continue
            (env,) = [e for e in pod.spec.containers[0].env
                      if e.name == "AUTHENTICATION_APIKEY_ALLOWED_KEYS"]  # fmt: skip
            key = env.value_from.secret_key_ref.key
            self.accepted[pod.metadata.uid] = data[key].split(",")
        sent = data["weaviate-api-key"]  # what the client's mounted file holds now
        ready_now = 0
        for pod in pods:
            ready = any(
                c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])
            )
            if not ready or pod.metadata.deletion_timestamp:
                continue
            ready_now += 1
            if sent in self.accepted.get(pod.metadata.uid, []):
                self.ok += 1
            else:
                self.failed += 1
                self.failures.append(pod.metadata.name)
        self.fewest_ready = min(self.fewest_ready, ready_now)

    def run(self) -> None:
        while not self.stop.is_set():
            self.step()
            time.sleep(0.1)


def _rotation(api_client: Any, namespace: str) -> dict[str, Any]:
    status = _cr(api_client, namespace, "demo").get("status", {})
    return dict(status.get("weaviateKeyRotation") or {})


def _pods(api_client: Any, namespace: str) -> dict[str, str]:
    """uid of every pod by name: a restart storm would replace more than Weaviate's."""
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace).items
    return {p.metadata.name: p.metadata.uid for p in pods if not p.metadata.deletion_timestamp}


def _sts_ref(api_client: Any, namespace: str, names: Names) -> str:
    sts = client.AppsV1Api(api_client).read_namespaced_stateful_set(
        names.component("weaviate"), namespace
    )
    (env,) = [e for e in sts.spec.template.spec.containers[0].env
              if e.name == "AUTHENTICATION_APIKEY_ALLOWED_KEYS"]  # fmt: skip
    return str(env.value_from.secret_key_ref.key)


def _sts_rolled(api_client: Any, namespace: str, names: Names) -> bool:
    sts = client.AppsV1Api(api_client).read_namespaced_stateful_set(
        names.component("weaviate"), namespace
    )
    s = sts.status
    return bool(
        s.observed_generation == sts.metadata.generation
        and s.current_revision == s.update_revision
        and s.updated_replicas == s.ready_replicas == sts.spec.replicas
    )


def _settled(api_client: Any, namespace: str) -> bool:
    """Every Deployment and StatefulSet rolled out, no pod terminating."""
    apps = client.AppsV1Api(api_client)
    workloads = [*apps.list_namespaced_deployment(namespace).items,
                 *apps.list_namespaced_stateful_set(namespace).items]  # fmt: skip
    for w in workloads:
        s = w.status
        want = w.spec.replicas or 0
        if s.observed_generation != w.metadata.generation:
            return False
        if (s.updated_replicas or 0) != want or (s.ready_replicas or 0) != want:
            return False
        if (s.replicas or 0) != want:
            return False
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace).items
    return not any(p.metadata.deletion_timestamp for p in pods)


@pytest.fixture
def instance(api_client: Any, kubeconfig: Path, namespace: str) -> Iterator[Names]:
    # Three replicas but one copy of each object: a restart would be an outage (refused).
    weaviate = {"replicas": 3, "replicationFactor": 1, "keyRotation": {"gracePeriodSeconds": GRACE}}
    _apply(kubeconfig, _sample(namespace, weaviate=weaviate))
    _wait_ready(api_client, namespace, "demo", timeout=300)
    yield Names("demo", namespace)


def test_weaviate_key_rotates_by_rolling_restarts_with_no_refused_request(
    api_client: Any,
    kubeconfig: Path,
    namespace: str,
    instance: Names,
    operator_process: OperatorProcess,
) -> None:
    names = instance
    annotate = ("-n", namespace, "annotate", "--overwrite", "indexforge/demo")
    fleet = Fleet(api_client, namespace, names)
    old = fleet.secret()["weaviate-api-key"]
    assert fleet.secret()["weaviate-api-keys"] == old

    # Unhappy path first: with one copy per object a restart is an outage: refused, and
    # nothing changes (no state Secret, no pod replaced).
    before = _pods(api_client, namespace)
    kubectl(kubeconfig, *annotate, f"{ANNOTATION}=first")
    wait_for(
        lambda: any(
            r == "WeaviateKeyRotationRefused" and "replication factor 1" in m
            for _, r, m in _events(api_client, namespace)
        ),
        timeout=30,
        what="WeaviateKeyRotationRefused Event",
    )
    wait_for(lambda: _rotation(api_client, namespace).get("refused") == "first",
             timeout=30, what="status names the refused request")  # fmt: skip
    secrets = client.CoreV1Api(api_client).list_namespaced_secret(namespace).items
    assert names.weaviate_key_rotation not in [s.metadata.name for s in secrets]
    assert _pods(api_client, namespace) == before

    # Three copies: a restart keeps every quorum. (A spec change rolls nothing of Weaviate.)
    patch = '{"spec":{"weaviate":{"replicationFactor":3}}}'
    kubectl(kubeconfig, "-n", namespace, "patch", "indexforge/demo", "--type=merge", "-p", patch)
    _wait_ready(api_client, namespace, "demo", timeout=120)
    wait_for(lambda: _settled(api_client, namespace), timeout=180,
             what="the API and workers rolled out the new replication factor")  # fmt: skip
    others = {n: u for n, u in _pods(api_client, namespace).items() if "-weaviate-" not in n}
    weaviate_pods = {n: u for n, u in _pods(api_client, namespace).items() if "-weaviate-" in n}
    assert len(weaviate_pods) == 3
    fleet.start()
    try:
        time.sleep(2)
        started = time.monotonic()
        kubectl(kubeconfig, *annotate, f"{ANNOTATION}=second")
        wait_for(lambda: _rotation(api_client, namespace).get("phase") == "Issued",
                 timeout=60, what="new key issued")  # fmt: skip
        listed = fleet.secret()["weaviate-api-keys"].split(",")
        new = listed[0]
        assert listed == [new, old] and fleet.secret()["weaviate-api-key"] == old
        wait_for(lambda: _rotation(api_client, namespace).get("phase") == "Published",
                 timeout=300, what="every Weaviate pod restarted; new key published")  # fmt: skip
        published = time.monotonic()
        cond = _condition(_cr(api_client, namespace, "demo"), "WeaviateKeyRotation")
        assert cond is not None and cond["reason"] in ("GracePeriod", "KeysCurrent"), cond
        assert fleet.secret()["weaviate-api-key"] == new
        assert _sts_ref(api_client, namespace, names) == "weaviate-api-keys"
        replaced = {n: u for n, u in _pods(api_client, namespace).items() if "-weaviate-" in n}
        assert set(replaced) == set(weaviate_pods)
        assert not set(replaced.values()) & set(weaviate_pods.values()), "a pod kept old keys"
        # The operator restarts inside the grace period: the rotation resumes from the Secret.
        operator_process.stop()
        time.sleep(2)
        operator_process.start()
        wait_for(
            lambda: (
                _rotation(api_client, namespace).get("phase") == "Idle"
                and _rotation(api_client, namespace).get("request") == "second"
            ),
            timeout=180,
            what="old key retired",
        )
        retired = time.monotonic()
        assert _sts_ref(api_client, namespace, names) == "weaviate-api-key"
        wait_for(lambda: _sts_rolled(api_client, namespace, names), timeout=300,
                 what="Weaviate restarted without the old key")  # fmt: skip
        time.sleep(1)
    finally:
        fleet.stop.set()
        fleet.join(timeout=10)
    print(
        f"weaviate rotation: ok={fleet.ok} failed={fleet.failed} fewest ready="
        f"{fleet.fewest_ready}; issued->published "
        f"{published - started:.1f}s, published->retired {retired - published:.1f}s"
    )
    assert fleet.failed == 0, fleet.failures[:10]
    assert fleet.fewest_ready >= 2, "more than one Weaviate pod was down at once"
    assert fleet.ok > 100
    assert retired - published >= GRACE - 1  # the grace period held despite the restart
    # Every Weaviate pod now accepts the new key alone; nothing else was restarted.
    pods = _pods(api_client, namespace)
    final = {u for n, u in pods.items() if "-weaviate-" in n}
    assert len(final) == 3 and all(fleet.accepted[u] == [new] for u in final)
    assert {n: u for n, u in pods.items() if "-weaviate-" not in n} == others
    assert fleet.secret()["weaviate-api-keys"] == new
    reasons = [r for _, r, _ in _events(api_client, namespace)]
    for reason in ("WeaviateKeyRotationStarted", "WeaviateKeyPublished", "OldWeaviateKeyRetired"):
        assert reason in reasons, reasons
    text = str(_cr(api_client, namespace, "demo").get("status")) + str(
        _events(api_client, namespace)
    )
    assert old not in text and new not in text
    cond = _condition(_cr(api_client, namespace, "demo"), "WeaviateKeyRotation")
    assert cond is not None and (cond["status"], cond["reason"]) == ("True", "KeysCurrent"), cond

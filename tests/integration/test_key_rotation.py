"""Gateway key rotation through the real operator on the local control plane: no request with
a valid key fails, and the old key is refused after the grace period.

Real: the operator process (its own ServiceAccount and RBAC), the API server, the Deployment
controller rolling Kong's pods on the config checksum, kwok marking the pods Running/Ready,
the kong.yml Secret and the consumers Secret the operator writes, the annotation that asks for
the rotation, the Events, an operator restart in the middle of the rotation.

Simulated (Kong cannot run here: no container runtime): Kong's key-auth. ``SimulatedGateway``
does what a DB-less Kong pod does with its config: a pod serves the kong.yml it was started
with — the version whose checksum its pod template carries (captured from the config Secret
as the operator writes it) — and accepts a key iff that kong.yml lists it in some consumer's
``keyauth_credentials``. Each request goes to the next ready, non-terminating gateway pod
(round robin, like the Service), so a key must be valid on every pod traffic can reach.
The client re-reads its key from the consumers Secret before every request through the API;
a real client's mounted Secret lags by up to the kubelet sync period, which the grace period
must cover (spec description) and which this test does not reproduce.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from indexforge_operator.builders.common import CHECKSUM_ANNOTATION, checksum
from indexforge_operator.naming import Names
from indexforge_operator.rotation import ANNOTATION
from tests.conftest import kubectl
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

from .test_operator import _apply, _cr, _sample, _wait_ready

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]
GRACE = 20
CONSUMERS = [{"username": "web"}, {"username": "batch"}]


def _pod_ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class SimulatedGateway:
    """Kong's key-auth over the real gateway pods (see the module docstring)."""

    def __init__(self, api_client: Any, namespace: str, names: Names) -> None:
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.names = namespace, names
        self.configs: dict[str, set[str]] = {}  # config checksum -> accepted keys
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.unknown_config = 0
        self.no_pod = 0
        self.rr = itertools.count()
        self.thread = threading.Thread(target=self._capture, daemon=True)

    def _capture(self) -> None:
        """Every version of kong.yml the operator writes, by the checksum pods carry."""
        while not self.stop.is_set():
            self.capture_once()
            time.sleep(0.05)

    def capture_once(self) -> None:
        secret = self.core.read_namespaced_secret(self.names.config("gateway"), self.namespace)
        text = base64.b64decode(secret.data["kong.yml"]).decode()
        kong = yaml.safe_load(text)
        keys = {
            cred["key"]
            for consumer in kong.get("consumers") or []
            for cred in consumer.get("keyauth_credentials") or []
        }
        with self.lock:
            self.configs[checksum({"kong.yml": text})] = keys

    def pods(self) -> list[Any]:
        selector = "app.kubernetes.io/component=gateway,app.kubernetes.io/instance=demo"
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return [p for p in pods if _pod_ready(p)]

    def accepted_by(self, pod: Any) -> set[str] | None:
        """The keys of the kong.yml the pod started with. A pod can be Ready (kwok is quick)
        before the 50 ms capture loop saw its config: then the Secret is read once more, as
        the pod itself read it at start; a checksum still unknown counts as a failure."""
        sha = (pod.metadata.annotations or {}).get(CHECKSUM_ANNOTATION) or ""
        with self.lock:
            known = self.configs.get(sha)
        if known is None:
            self.capture_once()
            with self.lock:
                known = self.configs.get(sha)
        return known

    def request(self, key: str) -> bool:
        pods = sorted(self.pods(), key=lambda p: p.metadata.name)
        if not pods:
            self.no_pod += 1
            return False
        pod = pods[next(self.rr) % len(pods)]
        accepted = self.accepted_by(pod)
        if accepted is None:
            self.unknown_config += 1
            return False
        return key in accepted

    def everywhere(self, key: str) -> list[bool]:
        """Whether each ready pod accepts ``key``."""
        return [key in (self.accepted_by(p) or set()) for p in self.pods()]


class Client(threading.Thread):
    """A client that reads its key from the consumers Secret and keeps calling."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        names: Names,
        gateway: SimulatedGateway,
        consumer: str,
    ) -> None:
        super().__init__(daemon=True)
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.names, self.gateway, self.consumer = (
            namespace,
            names,
            gateway,
            consumer,
        )
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.keys_seen: list[str] = []

    def key(self) -> str:
        secret = self.core.read_namespaced_secret(self.names.gateway_consumers, self.namespace)
        return base64.b64decode(secret.data[self.consumer]).decode()

    def run(self) -> None:
        while not self.stop.is_set():
            key = self.key()
            if not self.keys_seen or self.keys_seen[-1] != key:
                self.keys_seen.append(key)
            if self.gateway.request(key):
                self.ok += 1
            else:
                self.failed += 1
            time.sleep(0.02)


def _events(api_client: Any, namespace: str) -> list[tuple[str, str, str]]:
    items = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    return [
        (e.type, e.reason, e.message or "") for e in items if e.involved_object.kind == "IndexForge"
    ]


def _rotation(api_client: Any, namespace: str) -> dict[str, Any]:
    return dict(_cr(api_client, namespace, "demo").get("status", {}).get("keyRotation") or {})


def _diagnose(api_client: Any, namespace: str, gateway: SimulatedGateway) -> None:
    dep = client.AppsV1Api(api_client).read_namespaced_deployment("demo-gateway", namespace)
    print(
        "deployment",
        dep.metadata.generation,
        dep.status.to_dict(),
        dep.spec.template.metadata.annotations,
        dep.spec.strategy.to_dict(),
    )
    cr = _cr(api_client, namespace, "demo")
    print("status", {k: v for k, v in cr.get("status", {}).items() if k != "components"})
    print("events", _events(api_client, namespace))
    for pod in client.CoreV1Api(api_client).list_namespaced_pod(namespace).items:
        if "gateway" in pod.metadata.name:
            print(
                "pod",
                pod.metadata.name,
                pod.status.phase,
                pod.metadata.deletion_timestamp,
                pod.metadata.annotations,
                [(c.type, c.status) for c in pod.status.conditions or []],
            )
    print("configs", list(gateway.configs))


@pytest.fixture
def instance(api_client: Any, kubeconfig: Path, namespace: str) -> Iterator[Names]:
    gateway = {
        "replicas": 2,
        "keyAuth": {
            "consumers": CONSUMERS,
            "rotation": {"gracePeriodSeconds": GRACE, "rolloutTimeoutSeconds": 120},
        },
    }
    _apply(kubeconfig, _sample(namespace, gateway=gateway))
    _wait_ready(api_client, namespace, "demo", timeout=300)
    yield Names("demo", namespace)


def test_rotation_fails_no_request_and_retires_the_old_key(
    api_client: Any,
    kubeconfig: Path,
    namespace: str,
    instance: Names,
    operator_process: OperatorProcess,
) -> None:
    names = instance
    core = client.CoreV1Api(api_client)
    gateway = SimulatedGateway(api_client, namespace, names)
    gateway.capture_once()
    gateway.thread.start()
    web = Client(api_client, namespace, names, gateway, "web")
    batch_key = Client(api_client, namespace, names, gateway, "batch").key()
    old = web.key()
    assert all(gateway.everywhere(old)) and gateway.everywhere(old)

    # Unhappy path first: an unknown consumer is refused and nothing changes.
    kubectl(kubeconfig, "-n", namespace, "annotate", "indexforge/demo", f"{ANNOTATION}=nobody")
    wait_for(
        lambda: any(
            r == "KeyRotationRefused" and "nobody" in m
            for _, r, m in _events(api_client, namespace)
        ),
        timeout=30,
        what="KeyRotationRefused Event",
    )
    assert web.key() == old and len(gateway.configs) == 1
    secrets = core.list_namespaced_secret(namespace).items
    assert names.gateway_key_rotation not in [s.metadata.name for s in secrets]

    web.start()
    try:
        time.sleep(2)
        # Kong's rollout is held (as a slow or failing Kong start would hold it): kwok makes
        # pods Ready faster than a pass, so without this a publish that did not wait for the
        # rollout would go unnoticed.
        deployment = f"deployment/{names.component('gateway')}"
        kubectl(kubeconfig, "-n", namespace, "rollout", "pause", deployment)
        started = time.monotonic()
        kubectl(
            kubeconfig,
            "-n",
            namespace,
            "annotate",
            "--overwrite",
            "indexforge/demo",
            f"{ANNOTATION}=web:1",
        )
        wait_for(
            lambda: _rotation(api_client, namespace).get("phase") == "Issued",
            timeout=60,
            what="new key issued",
        )
        time.sleep(8)
        assert _rotation(api_client, namespace).get("phase") == "Issued"
        assert web.key() == old  # not published while a pod still runs the old kong.yml
        kubectl(kubeconfig, "-n", namespace, "rollout", "resume", deployment)
        try:
            wait_for(
                lambda: _rotation(api_client, namespace).get("phase") == "Published",
                timeout=180,
                what="new key published",
            )
        except AssertionError:
            _diagnose(api_client, namespace, gateway)
            raise
        published = time.monotonic()
        # The operator restarts inside the grace period: the rotation resumes from the Secret.
        operator_process.stop()
        time.sleep(2)
        operator_process.start()
        wait_for(
            lambda: (
                _rotation(api_client, namespace).get("phase") == "Idle"
                and _rotation(api_client, namespace).get("request") == "web:1"
            ),
            timeout=180,
            what="old key retired",
        )
        retired = time.monotonic()
        new = web.key()
        # Kong's pods roll once more, without the old key.
        wait_for(
            lambda: (
                gateway.pods() and not any(gateway.everywhere(old)) and len(gateway.pods()) == 2
            ),
            timeout=120,
            what="every gateway pod refuses the old key",
        )
        time.sleep(1)
    finally:
        web.stop.set()
        gateway.stop.set()
        web.join(timeout=10)
    print(
        f"rotation: requests ok={web.ok} failed={web.failed}; issued->published "
        f"{published - started:.1f}s, published->retired {retired - published:.1f}s"
    )

    assert web.failed == 0, (web.failed, gateway.no_pod, gateway.unknown_config)
    assert web.ok > 100
    assert web.keys_seen == [old, new] and new != old
    assert retired - published >= GRACE - 1  # the grace period held despite the restart
    assert not gateway.request(old) and gateway.request(new)
    assert all(gateway.everywhere(new)) and not any(gateway.everywhere(old))
    assert Client(api_client, namespace, names, gateway, "batch").key() == batch_key
    reasons = [r for _, r, _ in _events(api_client, namespace)]
    for reason in ("KeyRotationStarted", "KeyRotated", "OldKeyRetired"):
        assert reason in reasons, reasons
    # No key in status or Events.
    text = str(_cr(api_client, namespace, "demo").get("status")) + str(
        _events(api_client, namespace)
    )
    assert old not in text and new not in text

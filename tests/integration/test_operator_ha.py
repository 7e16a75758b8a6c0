"""HA and chaos on the real API server: two replicas and a Lease, kill -9, an API server restart.

Bounded: every loop has a count and every wait a timeout; only processes these tests started
are signalled, by their own handles.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from indexforge_operator.naming import LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY, Names
from tests.conftest import REACTION_SECONDS
from tests.integration.test_operator import GROUP, PLURAL, VERSION, _apply, _sample, _wait_ready
from tests.integration.test_operator_failures import LIGHT
from tests.operator_identity import NAMESPACE as LEASE_NAMESPACE
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]
HANDOVER_LIMIT = 30.0  # the bound; lease 15 s + retry 2 s makes it ~17 s


def _leader(api_client) -> str:  # type: ignore[no-untyped-def]
    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(
        "indexforge-operator", LEASE_NAMESPACE
    )
    return str(lease.spec.holder_identity or "")


@pytest.fixture
def standby(operator_process: OperatorProcess, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A second replica with the same identity, RBAC and Lease, started after the leader."""
    wait_for(lambda: operator_process.metric("indexforge_operator_leader") == 1, timeout=30,
             what="session operator leads")  # fmt: skip
    second = OperatorProcess(
        kubeconfig=operator_process.kubeconfig,
        workdir=tmp_path,
        name="standby",
        env=dict(operator_process.env),
    ).start()
    yield second
    second.stop()
    if not operator_process.alive():
        operator_process.start()
    wait_for(lambda: operator_process.metric("indexforge_operator_leader") == 1, timeout=40,
             what="session operator leads again")  # fmt: skip


def test_only_the_leader_writes_and_a_killed_leader_hands_over_quickly(
    api_client, kubeconfig: Path, namespace: str, operator_process: OperatorProcess,
    standby: OperatorProcess,
) -> None:  # fmt: skip
    assert standby.metric("indexforge_operator_leader") == 0
    _apply(kubeconfig, _sample(namespace, name="ha", **LIGHT))
    _wait_ready(api_client, namespace, "ha")
    assert standby.metric("indexforge_operator_reconciles_total") == 0, "a standby never passes"
    assert standby.pass_requests() == 0, "nor writes"
    assert _leader(api_client) == operator_process.name

    operator_process.kill()  # no Lease release: the standby must wait the lease out
    killed = time.monotonic()
    wait_for(lambda: standby.metric("indexforge_operator_leader") == 1, timeout=HANDOVER_LIMIT,
             what="standby takes the Lease")  # fmt: skip
    handover = time.monotonic() - killed
    assert handover < HANDOVER_LIMIT
    assert _leader(api_client) == "standby"

    names = Names("ha", namespace)
    core = client.CoreV1Api(api_client)
    core.delete_namespaced_config_map(names.config("redis-app"), namespace)
    wait_for(lambda: core.read_namespaced_config_map(names.config("redis-app"), namespace),
             timeout=REACTION_SECONDS, what="the new leader repairs drift")  # fmt: skip
    print(f"handover after kill -9: {handover:.1f}s")


def _children(api_client, namespace: str) -> list[Any]:  # type: ignore[no-untyped-def]
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    selector = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
    items: list[Any] = []
    for lister in (core.list_namespaced_service, core.list_namespaced_config_map,
                   core.list_namespaced_secret, core.list_namespaced_service_account,
                   apps.list_namespaced_deployment, apps.list_namespaced_stateful_set):  # fmt: skip
        items += lister(namespace, label_selector=selector).items
    return items


def test_kill_minus_nine_during_reconciles_converges_without_orphans(
    api_client, kubeconfig: Path, operator_process: OperatorProcess
) -> None:
    """10 CRs; the operator is SIGKILLed 5 times at random points of their first passes."""
    core = client.CoreV1Api(api_client)
    namespace = f"t-chaos-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    rng = random.Random(9)
    try:
        crs = [f"c{i}" for i in range(10)]
        for name in crs:
            _apply(kubeconfig, _sample(namespace, name=name, **LIGHT))
        for _ in range(5):
            time.sleep(rng.uniform(0.2, 3.0))
            operator_process.kill()
            operator_process.start()
        for name in crs:
            _wait_ready(api_client, namespace, name, timeout=180)

        uids = {
            cr["metadata"]["name"]: cr["metadata"]["uid"]
            for cr in client.CustomObjectsApi(api_client).list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL
            )["items"]
        }
        for obj in _children(api_client, namespace):
            refs = [r for r in obj.metadata.owner_references or [] if r.controller]
            instance = obj.metadata.labels[LABEL_INSTANCE]
            assert [(r.name, r.uid) for r in refs] == [(instance, uids[instance])], (
                f"{obj.kind}/{obj.metadata.name} orphaned or doubly owned"
            )
        for name in crs:  # keys generated once: the Kong config carries the stored ones
            names = Names(name, namespace)
            keys = core.read_namespaced_secret(names.gateway_consumers, namespace).data
            kong = core.read_namespaced_secret(names.config("gateway"), namespace).data
            kong_text = "".join(base64.b64decode(v).decode() for v in kong.values())
            assert all(base64.b64decode(k).decode() in kong_text for k in keys.values()), name
    finally:
        core.delete_namespace(namespace)


def test_operator_rides_out_an_api_server_restart(
    api_client, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    state = kubeconfig.parent
    if not (state / "state.json").exists():
        pytest.skip("the API server is not ours to restart (kind or an external cluster)")
    from tests.cluster import controlplane

    pid = operator_process.proc.pid if operator_process.proc else None
    controlplane.restart_apiserver(state, pause_s=3)
    settled = _volumes_bind_again(api_client, namespace)
    back = time.monotonic()
    _apply(kubeconfig, _sample(namespace, name="after-restart", **LIGHT))
    _wait_ready(api_client, namespace, "after-restart", timeout=90)
    assert operator_process.alive() and operator_process.proc is not None
    assert operator_process.proc.pid == pid, "recovered without a restart of its own"
    print(f"volumes bound again {settled:.1f}s after /readyz; Ready {time.monotonic() - back:.1f}s"
          " after that")  # fmt: skip
    assert time.monotonic() - back < 60


def _volumes_bind_again(api_client, namespace: str) -> float:  # type: ignore[no-untyped-def]
    """Wait until the control plane binds a claim again; return how long that took.

    Late in a full run (a large etcd, namespaces still terminating) kube-controller-manager's
    volume binding lagged minutes behind /readyz after the restart, so the CR's StatefulSets
    waited on unbound claims while the operator had long applied everything. That lag is the
    control plane's, not the operator's: the operator's clock starts once a canary claim binds.
    """
    core = client.CoreV1Api(api_client)
    start = time.monotonic()
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "canary"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    })  # fmt: skip

    def bound() -> bool:
        claim = core.read_namespaced_persistent_volume_claim("canary", namespace)
        return claim.status.phase == "Bound"

    wait_for(bound, timeout=240, what="a canary claim Bound after the API server restart")
    return time.monotonic() - start

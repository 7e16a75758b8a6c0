"""Watch-namespaces mode: the operator under the chart's namespaced RBAC (a Role per watched
namespace, nothing cluster-wide but CRD reads) reconciles its namespaces and only those."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests import operator_identity
from tests.integration.test_operator import _apply, _cr, _sample, _wait_ready
from tests.integration.test_operator_failures import LIGHT
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

pytestmark = [pytest.mark.cluster]
SCOPED = "indexforge-operator-scoped"


@pytest.fixture
def scoped_operator(
    api_client, kubeconfig: Path, operator_process: OperatorProcess, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, list[str]]]:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api_client)
    suffix = uuid.uuid4().hex[:5]
    watched = [f"t-watched-a-{suffix}", f"t-watched-b-{suffix}"]
    other = f"t-unwatched-{suffix}"
    for ns in (*watched, other):
        core.create_namespace({"metadata": {"name": ns}})
    operator_identity.install_rbac(kubeconfig, watched, service_account=SCOPED)
    identity = operator_identity.service_account_kubeconfig(
        kubeconfig, tmp_path / "scoped-kubeconfig", service_account=SCOPED
    )
    operator_process.stop()  # releases the Lease: the scoped replica leads at once
    scoped = OperatorProcess(
        kubeconfig=identity, workdir=tmp_path, name="scoped", namespaces=watched,
        env=dict(operator_process.env),
    )  # fmt: skip
    try:
        scoped.start()
        yield scoped, [*watched, other]
    finally:
        scoped.stop()
        operator_process.start()
        for ns in (*watched, other):
            core.delete_namespace(ns)


def test_watched_namespaces_are_reconciled_and_others_left_alone(
    api_client, kubeconfig: Path, scoped_operator: tuple[OperatorProcess, list[str]]
) -> None:
    scoped, (ns_a, ns_b, other) = scoped_operator
    for ns in (ns_a, ns_b, other):
        _apply(kubeconfig, _sample(ns, name="scoped", **LIGHT))
    _wait_ready(api_client, ns_a, "scoped")
    _wait_ready(api_client, ns_b, "scoped")
    time.sleep(3)
    assert not _cr(api_client, other, "scoped").get("status"), "an unwatched namespace is ignored"
    denied = [m for m in scoped.log_messages() if re.search(r"\b(403|Forbidden)\b", m)]
    assert not denied, denied
    wait_for(lambda: scoped.metric("indexforge_operator_leader") == 1, timeout=10,
             what="scoped replica leads")  # fmt: skip

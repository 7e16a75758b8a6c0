"""secrets.provider vault against a real OpenBao dev server with Kubernetes auth.

The real operator (its chart's RBAC, its own ServiceAccount token) logs in to OpenBao, whose
Kubernetes auth asks the local control plane's TokenReview. Unhappy paths first: a wrong role
and a read-only policy give VaultAuthFailed / VaultPermissionDenied and create nothing; a hung
OpenBao gives VaultUnavailable and leaves the Secrets untouched, then recovers. Then the happy
path: values written to KV v2 at secret/indexforge/<ns>/<name>, the synced Secret equal to
them, no further KV write, a value changed in OpenBao followed by the Secret (one the
generated files cannot carry refused: VaultValueInvalid, the Secret kept), an operator
restart keeping every value, two instances of one namespace on separate paths.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml
from kubernetes import client

from indexforge_operator.builders.redis_acl import acl_user_line
from tests.conftest import kubectl
from tests.operator_runner import OperatorProcess
from tests.vault_server import READONLY_ROLE, BaoServer, configure_kubernetes
from tests.waiting import wait_for

from .test_operator import _apply, _condition, _cr, _sample, _wait_ready

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
QUIET = {"monitoring": {"enabled": False}}


@pytest.fixture(scope="module")
def bao(
    kubeconfig: Path, operator_identity: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BaoServer]:
    server = BaoServer(tmp_path_factory.mktemp("bao")).start()
    try:
        configure_kubernetes(server, kubeconfig)
        yield server
    finally:
        server.stop()


def _vault_cr(namespace: str, bao: BaoServer, name: str = "demo", **vault: Any) -> dict[str, Any]:
    settings = {"address": bao.address, "refreshSeconds": 10, **vault}
    return _sample(namespace, name, **QUIET, secrets={"provider": "vault", "vault": settings})


def _kv(bao: BaoServer, path: str) -> tuple[dict[str, str], int]:
    got = bao.client().secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=False
    )
    return got["data"]["data"], int(got["data"]["metadata"]["version"])


def _secret(api_client: Any, namespace: str, name: str) -> Any:
    return client.CoreV1Api(api_client).read_namespaced_secret(name, namespace)


def _value(api_client: Any, namespace: str, name: str, key: str) -> str:
    return base64.b64decode(_secret(api_client, namespace, name).data[key]).decode()


def _degraded(api_client: Any, namespace: str, name: str, reason: str, op: OperatorProcess) -> Any:
    def found() -> dict[str, Any] | None:
        cond = _condition(_cr(api_client, namespace, name), "Degraded")
        return cond if cond and cond["status"] == "True" and cond["reason"] == reason else None

    try:
        return wait_for(found, timeout=90, what=f"Degraded {reason}")
    except AssertionError as exc:
        status = _cr(api_client, namespace, name).get("status")
        raise AssertionError(f"{exc}\nstatus: {status}\n{op.log_tail()}") from exc


def _warning_reasons(api_client: Any, namespace: str) -> set[str]:
    events = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    return {e.reason for e in events if e.type == "Warning"}


def _all_text(api_client: Any, namespace: str, name: str) -> str:
    """Status and event messages of the namespace: where no value may ever appear."""
    status = str(_cr(api_client, namespace, name).get("status"))
    events = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    return status + "".join(str(e.message) for e in events)


def test_admission_rejects_vault_without_address(
    kubeconfig: Path, namespace: str, crd_installed: Path
) -> None:
    doc = _sample(namespace, **QUIET, secrets={"provider": "vault"})
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc), check=False)
    assert "secrets.vault.address is required" in out, out


def test_wrong_role_and_read_only_policy_are_degraded_and_create_nothing(
    api_client: Any, namespace: str, kubeconfig: Path, bao: BaoServer,
    operator_process: OperatorProcess,
) -> None:  # fmt: skip
    _apply(kubeconfig, _vault_cr(namespace, bao, "norole", role="no-such-role"))
    _apply(kubeconfig, _vault_cr(namespace, bao, "readonly", role=READONLY_ROLE))
    auth = _degraded(api_client, namespace, "norole", "VaultAuthFailed", operator_process)
    assert "no-such-role" in auth["message"], auth
    denied = _degraded(api_client, namespace, "readonly", "VaultPermissionDenied", operator_process)
    assert "permission denied" in denied["message"], denied
    assert "secret/indexforge/" in denied["message"], denied
    wait_for(
        lambda: {"VaultAuthFailed", "VaultPermissionDenied"}
        <= _warning_reasons(api_client, namespace),
        timeout=30, what="Warning Events for both",
    )  # fmt: skip
    # Nothing was applied: no Secret, no workload.
    secrets = client.CoreV1Api(api_client).list_namespaced_secret(namespace).items
    assert not [s.metadata.name for s in secrets if "internal-auth" in s.metadata.name]
    assert not client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items
    # The read-only role could read but not write: nothing exists at its path either.
    with pytest.raises(hvac.exceptions.InvalidPath):
        _kv(bao, f"indexforge/{namespace}/readonly")


def test_vault_values_synced_kept_and_followed(
    api_client: Any, namespace: str, kubeconfig: Path, bao: BaoServer,
    operator_process: OperatorProcess,
) -> None:  # fmt: skip
    _apply(kubeconfig, _vault_cr(namespace, bao, "demo"))
    _apply(kubeconfig, _vault_cr(namespace, bao, "other"))
    _wait_ready(api_client, namespace, "demo", timeout=240)
    _wait_ready(api_client, namespace, "other", timeout=240)
    data, version = _kv(bao, f"indexforge/{namespace}/demo")
    other, _ = _kv(bao, f"indexforge/{namespace}/other")
    assert {"weaviate-api-key", "gateway-tokens", "redis-app-password", "redis-ml-password",
            "redis-state-password"} <= set(data)  # fmt: skip
    # Two instances of one namespace: separate paths, separate values.
    assert not set(data.values()) & set(other.values())
    # The synced Secret holds Vault's values.
    for key in ("weaviate-api-key", "redis-app-password", "redis-state-password"):
        assert _value(api_client, namespace, "demo-internal-auth", key) == data[key]
    assert _value(api_client, namespace, "demo-internal-auth", "gateway-tokens").split() == (
        data["gateway-tokens"].split()
    )
    # No value in status or events.
    text = _all_text(api_client, namespace, "demo")
    assert not [v for v in data.values() if v in text]

    # Passes go on (refreshSeconds 10) and write nothing more to Vault.
    time.sleep(25)
    assert _kv(bao, f"indexforge/{namespace}/demo")[1] == version

    # Changed out-of-band in Vault: the Secret follows on the next refresh.
    changed = {**data, "redis-app-password": "changed-in-vault-0123456789"}
    bao.client().secrets.kv.v2.create_or_update_secret(
        path=f"indexforge/{namespace}/demo", secret=changed, mount_point="secret"
    )
    wait_for(
        lambda: _value(api_client, namespace, "demo-internal-auth", "redis-app-password")
        == "changed-in-vault-0123456789",
        timeout=60, what="the synced Secret following Vault",
    )  # fmt: skip
    conf = _value(api_client, namespace, "demo-internal-auth", "redis-app.conf")
    assert acl_user_line(["changed-in-vault-0123456789"]) in conf  # the only accepted one
    listed = _value(api_client, namespace, "demo-internal-auth", "redis-app-passwords")
    assert listed.split() == ["changed-in-vault-0123456789"]

    # A value the generated files cannot carry (a space would split the ACL line): Degraded
    # VaultValueInvalid naming the key, never the value; the Secret keeps the last good one.
    unusable = {**changed, "redis-app-password": "it's not-a-password"}
    bao.client().secrets.kv.v2.create_or_update_secret(
        path=f"indexforge/{namespace}/demo", secret=unusable, mount_point="secret"
    )
    cond = _degraded(api_client, namespace, "demo", "VaultValueInvalid", operator_process)
    assert "redis-app-password" in cond["message"], cond
    assert "not-a-password" not in _all_text(api_client, namespace, "demo")
    assert _value(api_client, namespace, "demo-internal-auth", "redis-app-password") == (
        "changed-in-vault-0123456789"
    )
    bao.client().secrets.kv.v2.create_or_update_secret(
        path=f"indexforge/{namespace}/demo", secret=changed, mount_point="secret"
    )
    _wait_ready(api_client, namespace, "demo", timeout=120)
    _, version = _kv(bao, f"indexforge/{namespace}/demo")

    # A restart of the operator keeps every value (nothing regenerated, nothing written).
    before = _secret(api_client, namespace, "demo-internal-auth").data
    operator_process.stop()
    operator_process.start()
    time.sleep(20)
    _wait_ready(api_client, namespace, "demo", timeout=120)
    assert _secret(api_client, namespace, "demo-internal-auth").data == before
    assert _kv(bao, f"indexforge/{namespace}/demo")[1] == version


def test_hung_vault_degrades_touches_nothing_and_recovers(
    api_client: Any, namespace: str, kubeconfig: Path, bao: BaoServer,
    operator_process: OperatorProcess,
) -> None:  # fmt: skip
    _apply(kubeconfig, _vault_cr(namespace, bao, "demo"))
    _wait_ready(api_client, namespace, "demo", timeout=240)
    before = _secret(api_client, namespace, "demo-internal-auth")
    bao.pause()
    try:
        cond = _degraded(api_client, namespace, "demo", "VaultUnavailable", operator_process)
        assert "timed out" in cond["message"] or "unreachable" in cond["message"], cond
        wait_for(
            lambda: "VaultUnavailable" in _warning_reasons(api_client, namespace),
            timeout=30, what="a Warning Event VaultUnavailable",
        )  # fmt: skip
        after = _secret(api_client, namespace, "demo-internal-auth")
        assert after.metadata.resource_version == before.metadata.resource_version
        assert operator_process.alive(), operator_process.log_tail()
    finally:
        bao.resume()
    _wait_ready(api_client, namespace, "demo", timeout=180)
    assert _secret(api_client, namespace, "demo-internal-auth").data == before.data


def test_switching_from_kubernetes_to_vault_keeps_every_value(
    api_client: Any, namespace: str, kubeconfig: Path, bao: BaoServer,
    operator_process: OperatorProcess,
) -> None:  # fmt: skip
    _apply(kubeconfig, _sample(namespace, "moved", **QUIET))
    _wait_ready(api_client, namespace, "moved", timeout=240)
    before = _secret(api_client, namespace, "moved-internal-auth").data
    _apply(kubeconfig, _vault_cr(namespace, bao, "moved"))

    def stored() -> dict[str, str] | None:
        try:
            return _kv(bao, f"indexforge/{namespace}/moved")[0]
        except hvac.exceptions.InvalidPath:
            return None

    data = wait_for(stored, timeout=60, what="the values moved into Vault")
    for key in ("weaviate-api-key", "redis-app-password", "redis-ml-password"):
        assert data[key] == base64.b64decode(before[key]).decode()
    _wait_ready(api_client, namespace, "moved", timeout=120)
    assert _secret(api_client, namespace, "moved-internal-auth").data == before

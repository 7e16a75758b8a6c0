"""Redis password rotation through the real operator on the local control plane: a client
under load never fails to authenticate, Redis refuses the old password at the end, no Redis
pod restarts, and an operator restart mid-rotation resumes.

Real: the operator process (its own ServiceAccount and RBAC), the API server, the
internal-auth Secret and the state Secret it writes, the annotation, the Events, the Redis
StatefulSets (kwok marks their pods Ready), Kong's Deployment rolling on kong.yml, a
redis-server (Debian) with the in-pod ACL sync script (builders/redis_acl.py) beside it, and
the services' re-reading credential provider (services/common/redis_auth.py).

Simulated (no container runtime): the kubelet's Secret volumes. ``Kubelet`` copies the
Secret's `redis-app-passwords` (the sidecar's mounted list) and `redis-app-password` (the
services' mounted file) to local files, by rename as the kubelet does, within a fraction of a
second; a real kubelet lags by up to a minute, which `propagationSeconds` (Issued ->
Published) and `gracePeriodSeconds` (Published -> Idle) must cover and this test does not
reproduce.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kubernetes import client

from indexforge_operator.builders.redis_acl import ACL_SYNC_SCRIPT
from indexforge_operator.naming import Names
from indexforge_operator.redis_rotation import ANNOTATION
from services.common.redis_auth import RotatingPassword
from tests.conftest import kubectl
from tests.operator_runner import OperatorProcess
from tests.services.conftest import RedisProcess, start_redis
from tests.waiting import wait_for

from .test_key_rotation import _events
from .test_operator import _apply, _cr, _sample, _wait_ready

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]
PROPAGATION, GRACE = 10, 10


def _replace(path: Path, text: str) -> None:
    fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fresh.write_text(text)
    os.replace(fresh, path)


class Kubelet(threading.Thread):
    """The two Secret volumes of this test's Redis and client (see the module docstring)."""

    def __init__(self, api_client: Any, namespace: str, names: Names, workdir: Path) -> None:
        super().__init__(daemon=True)
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.names = namespace, names
        self.passwords, self.password = workdir / "passwords", workdir / "password"
        self.stop = threading.Event()
        self.sync_once()

    def data(self) -> dict[str, str]:
        secret = self.core.read_namespaced_secret(self.names.internal_auth, self.namespace)
        return {k: base64.b64decode(v).decode() for k, v in secret.data.items()}

    def sync_once(self) -> None:
        data = self.data()
        files = {self.passwords: "redis-app-passwords", self.password: "redis-app-password"}
        for path, key in files.items():
            if not path.exists() or path.read_text() != data[key]:
                _replace(path, data[key])

    def run(self) -> None:
        while not self.stop.is_set():
            self.sync_once()
            time.sleep(0.2)


class Client(threading.Thread):
    """Keeps writing and reading; drops its connections every few commands, so new
    connections authenticate throughout (as failovers and idle timeouts make them)."""

    def __init__(self, server: RedisProcess, password_file: Path) -> None:
        super().__init__(daemon=True)
        self.redis = redis.Redis(
            host="127.0.0.1", port=server.port, socket_timeout=2,
            credential_provider=RotatingPassword(file=password_file),
        )  # fmt: skip
        self.stop = threading.Event()
        self.ok = self.failed = 0

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                self.redis.set(f"k{n % 20}", n)
                self.ok += 1
            except redis.exceptions.AuthenticationError:
                self.failed += 1
            n += 1
            if n % 5 == 0:
                self.redis.connection_pool.disconnect()
            time.sleep(0.01)


def _accepts(server: RedisProcess, password: str) -> bool:
    probe = redis.Redis(host="127.0.0.1", port=server.port, password=password, socket_timeout=2)
    try:
        return bool(probe.ping())
    except redis.exceptions.AuthenticationError:
        return False
    finally:
        probe.close()


def _rotation(api_client: Any, namespace: str) -> dict[str, Any]:
    status = _cr(api_client, namespace, "demo").get("status", {})
    return dict(status.get("redisPasswordRotation") or {})


def _restarts(api_client: Any, namespace: str) -> dict[str, str]:
    """uid of each Redis pod: a restart storm would replace them."""
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace).items
    return {p.metadata.name: p.metadata.uid for p in pods if "-redis-" in p.metadata.name}


@pytest.fixture
def instance(api_client: Any, kubeconfig: Path, namespace: str) -> Iterator[Names]:
    rotation = {"propagationSeconds": PROPAGATION, "gracePeriodSeconds": GRACE}
    _apply(kubeconfig, _sample(namespace, redis={"passwordRotation": rotation}))
    _wait_ready(api_client, namespace, "demo", timeout=300)
    yield Names("demo", namespace)


def test_redis_password_rotates_with_no_failed_auth_and_no_redis_restart(
    api_client: Any,
    kubeconfig: Path,
    namespace: str,
    instance: Names,
    operator_process: OperatorProcess,
    tmp_path: Path,
) -> None:
    names = instance
    annotate = ("-n", namespace, "annotate", "--overwrite", "indexforge/demo")
    kubelet = Kubelet(api_client, namespace, names, tmp_path)
    old = kubelet.password.read_text()
    assert kubelet.passwords.read_text() == f"{old}\n"

    # Unhappy path first: an unknown instance is refused and nothing changes.
    kubectl(kubeconfig, *annotate, f"{ANNOTATION}=redis-nope")
    wait_for(
        lambda: any(
            r == "RedisPasswordRotationRefused" and "redis-nope" in m
            for _, r, m in _events(api_client, namespace)
        ),
        timeout=30,
        what="RedisPasswordRotationRefused Event",
    )
    secrets = client.CoreV1Api(api_client).list_namespaced_secret(namespace).items
    assert names.redis_password_rotation not in [s.metadata.name for s in secrets]

    server = start_redis("redis-server", tmp_path, password=old)
    script = tmp_path / "acl-sync.sh"
    script.write_text(ACL_SYNC_SCRIPT)
    env = {**os.environ, "REDIS_PASSWORDS_FILE": str(kubelet.passwords),
           "REDIS_PORT": str(server.port), "REDIS_ACL_SYNC_SECONDS": "0.2"}  # fmt: skip
    sync = subprocess.Popen(["/bin/sh", str(script)], env=env)
    worker = Client(server, kubelet.password)
    pods = _restarts(api_client, namespace)
    kubelet.start()
    worker.start()
    try:
        time.sleep(2)
        started = time.monotonic()
        kubectl(kubeconfig, *annotate, f"{ANNOTATION}=redis-app:1")
        wait_for(lambda: _rotation(api_client, namespace).get("phase") == "Issued",
                 timeout=60, what="new password issued")  # fmt: skip

        def overlap() -> list[str] | None:
            listed = kubelet.passwords.read_text().split()
            return listed if len(listed) == 2 else None

        listed = wait_for(overlap, timeout=30, what="the list holds new and old")
        new = listed[0]
        assert listed == [new, old] and kubelet.password.read_text() == old
        wait_for(lambda: _accepts(server, new), timeout=30, what="Redis accepts the new one")
        wait_for(lambda: _rotation(api_client, namespace).get("phase") == "Published",
                 timeout=120, what="new password published")  # fmt: skip
        published = time.monotonic()
        wait_for(lambda: kubelet.password.read_text() == new, timeout=30, what="client file")
        # The operator restarts inside the grace period: the rotation resumes from the Secret.
        operator_process.stop()
        time.sleep(2)
        operator_process.start()
        wait_for(
            lambda: (
                _rotation(api_client, namespace).get("phase") == "Idle"
                and _rotation(api_client, namespace).get("request") == "redis-app:1"
            ),
            timeout=180,
            what="old password retired",
        )
        retired = time.monotonic()
        wait_for(lambda: not _accepts(server, old), timeout=30, what="Redis refuses the old one")
        time.sleep(1)
    finally:
        worker.stop.set()
        kubelet.stop.set()
        worker.join(timeout=10)
        sync.terminate()
        sync.wait(timeout=10)
        server.stop()
    print(
        f"redis rotation: ok={worker.ok} failed={worker.failed}; issued->published "
        f"{published - started:.1f}s, published->retired {retired - published:.1f}s"
    )
    assert worker.failed == 0 and worker.ok > 100
    assert published - started >= PROPAGATION - 1  # clients waited for the propagation bound
    assert retired - published >= GRACE - 1  # the grace period held despite the restart
    assert kubelet.passwords.read_text() == f"{new}\n"
    assert _restarts(api_client, namespace) == pods, "a Redis pod was replaced"
    # Kong's rate-limiting counters use the new password (its kong.yml rolled once).
    kong = client.CoreV1Api(api_client).read_namespaced_secret(names.config("gateway"), namespace)
    kong_yml = base64.b64decode(kong.data["kong.yml"]).decode()
    assert new in kong_yml and old not in kong_yml
    reasons = [r for _, r, _ in _events(api_client, namespace)]
    for reason in (
        "RedisPasswordRotationStarted",
        "RedisPasswordRotationPublished",
        "OldRedisPasswordRetired",
    ):
        assert reason in reasons, reasons
    text = str(_cr(api_client, namespace, "demo").get("status")) + str(
        _events(api_client, namespace)
    )
    assert old not in text and new not in text

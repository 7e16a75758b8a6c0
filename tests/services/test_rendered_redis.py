"""The redis.conf and auth include the operator renders, loaded by a real redis-server: a
client without the generated password is refused, with it served (finding 6 of issue 10:
Redis ran `protected-mode no` without a password behind NetworkPolicies only). The pod's ACL
sync sidecar and readiness probe, run as rendered (their commands, the mounted list from the
rendered Secret), change the accepted passwords live (issue 14, item 3), and keep the
exporter sidecar scraping across a rotation."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from indexforge_operator.builders import build_all, ports
from indexforge_operator.builders.redis import (
    AUTH_DIR,
    AUTH_FILE,
    EXPORTER_AUTH_DIR,
    EXPORTER_REDIS_ADDR,
)
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.charts.helmtools import require
from tests.cluster.tools import TOOLS_BIN
from tests.procs import free_port
from tests.waiting import wait_for

NAMES = Names("rediscfg", "shop")


def _objects() -> tuple[GeneratedSecrets, list[dict[str, Any]]]:
    spec = IndexForgeSpec()
    tokens = iter(range(1000))
    secrets = complete(spec, current=GeneratedSecrets(), token=lambda: f"pw-{next(tokens)}-x")
    return secrets, build_all(spec, NAMES, secrets=secrets, prometheus_operator=False)


def _rendered(component: str) -> tuple[str, str, str]:
    """(redis.conf, auth.conf, password) of one Redis as the operator renders them."""
    secrets, objs = _objects()
    (config,) = [o for o in objs if o["metadata"]["name"] == NAMES.config(component)]  # type: ignore[arg-type]
    (auth,) = [o for o in objs if o["metadata"]["name"] == NAMES.internal_auth]
    auth_conf = base64.b64decode(auth["data"][f"{component}.conf"]).decode()
    return config["data"]["redis.conf"], auth_conf, secrets.redis_password(component)


@pytest.fixture(params=["redis-app", "redis-ml"])
def rendered_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, str]]:
    with _serve(request.param, tmp_path) as served:
        yield served


@contextmanager
def _serve(component: str, tmp_path: Path) -> Iterator[tuple[int, str]]:
    conf, auth_conf, password = _rendered(component)
    port = free_port()
    (tmp_path / "auth.conf").write_text(auth_conf)
    local = []
    for line in conf.splitlines():  # pod paths and addresses -> this machine's
        if line.startswith("bind "):
            line = "bind 127.0.0.1"
        elif line.startswith("port "):
            line = f"port {port}"
        elif line.startswith("dir "):
            line = f"dir {tmp_path}"
        elif line == f"include {AUTH_FILE}":
            line = f"include {tmp_path / 'auth.conf'}"
        local.append(line)
    (tmp_path / "redis.conf").write_text("\n".join(local) + "\n")
    proc = subprocess.Popen(["redis-server", str(tmp_path / "redis.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, password=password, socket_timeout=1).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield port, password
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_rendered_redis_refuses_clients_without_the_password(
    rendered_redis: tuple[int, str],
) -> None:
    port, password = rendered_redis
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_timeout=2).set("k", "v")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, password="wrong", socket_timeout=2).ping()
    good = redis.Redis(port=port, password=password, socket_timeout=2)
    assert good.set("k", "v") and good.get("k") == b"v"


def _accepts(port: int, password: str) -> bool:
    try:
        return bool(redis.Redis(port=port, password=password, socket_timeout=2).ping())
    except redis.AuthenticationError:
        return False


def _list(path: Path, *passwords: str) -> None:
    """Replace the mounted list the way the kubelet does (a rename, never a partial file)."""
    fresh = path.with_name(f".{path.name}.new")
    fresh.write_text("".join(f"{p}\n" for p in passwords))
    os.replace(fresh, path)


def test_rendered_sidecar_and_probe_follow_the_mounted_list(tmp_path: Path) -> None:
    component = "redis-app"
    secrets, objs = _objects()
    name = NAMES.component(component)  # type: ignore[arg-type]
    (sts,) = [o for o in objs if o["kind"] == "StatefulSet" and o["metadata"]["name"] == name]
    containers = {c["name"]: c for c in sts["spec"]["template"]["spec"]["containers"]}
    (auth,) = [o for o in objs if o["metadata"]["name"] == NAMES.internal_auth]
    listed = base64.b64decode(auth["data"][f"{component}-passwords"]).decode()
    old = secrets.redis_password(component)
    assert listed == f"{old}\n"
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    passwords = mounted / "passwords"
    passwords.write_text(listed)

    def local(text: str) -> str:
        return text.replace(AUTH_DIR, str(mounted))

    with _serve(component, tmp_path) as (port, _):
        sync = containers["acl-sync"]
        env = {e["name"]: local(e["value"]) for e in sync["env"]}
        env |= {
            "REDIS_PORT": str(port),
            "REDIS_ACL_SYNC_SECONDS": "0.2",
            "PATH": os.environ["PATH"],
        }
        probe = [local(a).replace("-p 6379", f"-p {port}")
                 for a in containers["redis"]["readinessProbe"]["exec"]["command"]]  # fmt: skip

        def ready() -> bool:
            out = subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False)
            return out.stdout.strip() == "PONG"

        command = [local(a) for a in sync["command"]]
        sidecar = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            assert ready()
            _list(passwords, "fresh-password", old)  # Issued: both accepted
            wait_for(lambda: _accepts(port, "fresh-password"), timeout=10, what="new accepted")
            assert _accepts(port, old) and ready()
            _list(passwords, "fresh-password")  # retired: only the new one
            wait_for(lambda: not _accepts(port, old), timeout=10, what="old refused")
            assert ready(), "the probe must authenticate with the list, not the start value"
        finally:
            sidecar.terminate()
            sidecar.wait(timeout=10)


def _redis_up(metrics_port: int) -> float | None:
    """The exporter's redis_up (None: the exporter does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    values = [line.split()[1] for line in text.splitlines() if line.startswith("redis_up ")]
    return float(values[0]) if values else None


def test_the_exporter_keeps_scraping_across_a_rotation(tmp_path: Path) -> None:
    """The deployed redis_exporter version (built from Go like the other tools) with the
    rendered env, beside the rendered acl-sync: after the old password is retired it still
    scrapes (redis_up 1), because acl-sync wrote the new one to its password file and had it
    reload. A second exporter given only the start-time password, as before, reports the Redis
    down: the failure this prevents."""
    exporter_binary = require(TOOLS_BIN / "redis_exporter")
    component = "redis-app"
    secrets, objs = _objects()
    name = NAMES.component(component)  # type: ignore[arg-type]
    (sts,) = [o for o in objs if o["kind"] == "StatefulSet" and o["metadata"]["name"] == name]
    containers = {c["name"]: c for c in sts["spec"]["template"]["spec"]["containers"]}
    old = secrets.redis_password(component)
    mounted, exporter_dir = tmp_path / "mounted", tmp_path / "exporter-auth"
    mounted.mkdir()
    exporter_dir.mkdir()
    passwords = mounted / "passwords"
    _list(passwords, old)
    metrics_port, plain_port = free_port(), free_port()

    with _serve(component, tmp_path) as (port, _):

        def local(text: str) -> str:
            return (
                text.replace(AUTH_DIR, str(mounted))
                .replace(EXPORTER_AUTH_DIR, str(exporter_dir))
                .replace(EXPORTER_REDIS_ADDR, f"redis://localhost:{port}")
                .replace(f"127.0.0.1:{ports.REDIS_EXPORTER}/", f"127.0.0.1:{metrics_port}/")
            )

        def exporter_env(container: dict[str, Any]) -> dict[str, str]:
            out = {"PATH": os.environ["PATH"]}
            for var in container["env"]:
                # The Secret reference resolves to the password at the pod's start.
                out[var["name"]] = old if "valueFrom" in var else local(var["value"])
            return out

        sync, exporter = containers["acl-sync"], containers["exporter"]
        sync_env = exporter_env(sync) | {"REDIS_PORT": str(port), "REDIS_ACL_SYNC_SECONDS": "0.2"}
        with_file = exporter_env(exporter)
        start_only = {k: v for k, v in with_file.items() if k != "REDIS_PASSWORD_FILE"}
        procs = [
            subprocess.Popen([str(exporter_binary), "-web.listen-address", f"127.0.0.1:{p}"],
                             env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for p, e in ((metrics_port, with_file), (plain_port, start_only))
        ]  # fmt: skip
        try:
            # Started before acl-sync wrote its file: the env password serves meanwhile.
            wait_for(lambda: _redis_up(metrics_port) == 1, timeout=15, what="exporter up")
            assert _redis_up(plain_port) == 1
            procs.append(
                subprocess.Popen([local(a) for a in sync["command"]], env=sync_env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )  # fmt: skip
            written = exporter_dir / "passwords.json"
            wait_for(written.exists, timeout=10, what="acl-sync writes the exporter's file")
            assert written.stat().st_mode & 0o077 == 0, oct(written.stat().st_mode)
            _list(passwords, "fresh-password", old)  # Issued
            wait_for(lambda: _accepts(port, "fresh-password"), timeout=10, what="new accepted")
            _list(passwords, "fresh-password")  # the old one retired
            wait_for(lambda: not _accepts(port, old), timeout=10, what="old refused")
            assert json.loads(written.read_text()) == {
                f"redis://localhost:{port}": "fresh-password"
            }
            for _ in range(5):  # several scrapes, all with the new password
                assert _redis_up(metrics_port) == 1
                time.sleep(0.2)
            assert _redis_up(plain_port) == 0  # the start-time password alone: "down"
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)

"""The redis.conf and auth include the operator renders, loaded by a real redis-server: a
client without the generated password is refused, with it served (finding 6 of issue 10:
Redis ran `protected-mode no` without a password behind NetworkPolicies only)."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from indexforge_operator.builders import build_all
from indexforge_operator.builders.redis import AUTH_FILE
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.procs import free_port

NAMES = Names("rediscfg", "shop")


def _rendered(component: str) -> tuple[str, str, str]:
    """(redis.conf, auth.conf, password) of one Redis as the operator renders them."""
    spec = IndexForgeSpec()
    tokens = iter(range(1000))
    secrets = complete(spec, current=GeneratedSecrets(), token=lambda: f"pw-{next(tokens)}-x")
    objs = build_all(spec, NAMES, secrets=secrets, prometheus_operator=False)
    (config,) = [o for o in objs if o["metadata"]["name"] == NAMES.config(component)]  # type: ignore[arg-type]
    (auth,) = [o for o in objs if o["metadata"]["name"] == NAMES.internal_auth]
    auth_conf = base64.b64decode(auth["data"][f"{component}.conf"]).decode()
    return config["data"]["redis.conf"], auth_conf, secrets.redis_password(component)


@pytest.fixture(params=["redis-app", "redis-ml"])
def rendered_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, str]]:
    conf, auth_conf, password = _rendered(request.param)
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

"""The replicated state Redis as the operator renders it, run for real on loopback.

The rendered redis.conf / sentinel.conf (ConfigMaps) and the rendered init step (`init.sh`,
run with the init containers' env, addresses moved to loopback) start three redis-server
and three redis-sentinel processes; the API's state client is configured from the env the
operator gives the API Deployment. SIGKILL the primary: the client writes again within the
budget; the killed pod's init step waits for the sentinels to promote another pod and the
old primary comes back as a replica of it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry

from indexforge_operator.builders.credentials import redis_auth_conf
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from services.api.jobs import JobStore
from services.api.state import state_cache, state_redis
from tests.procs import free_port
from tests.services.conftest import RedisProcess, api_settings
from tests.services.redis_sentinel import (
    MASTER,
    SentinelProcess,
    named_master_port,
    sentinel_argv,
    stop_all,
    wait_online,
)
from tests.stack.monitoring import rendered_objects

PASSWORD = "state-secret"
FAILOVER_BUDGET_SECONDS = 30.0
NAMES = Names("demo", "search")
SPEC = IndexForgeSpec.model_validate({"redis": {"state": {"replication": {"enabled": True}}}})
INIT_ENV = {
    "POD_NAME", "ANNOUNCE_HOST", "SENTINELS", "MASTER_NAME", "PRIMARY", "REDIS_PORT",
    "PRIMARY_WAIT_SECONDS", "REDISCLI_AUTH", "CONF_IN", "CONF_OUT",
}  # fmt: skip


def _by_name(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "<from secret>") for e in container["env"]}


@dataclass
class Rendered:
    redis_conf: str
    sentinel_conf: str
    script: str
    redis_init_env: dict[str, str]
    sentinel_init_env: dict[str, str]
    api_env: dict[str, str]


def rendered() -> Rendered:
    objs = rendered_objects(SPEC, NAMES)
    redis_cm = _by_name(objs, "ConfigMap", NAMES.config("redis-state"))["data"]
    sentinel_cm = _by_name(objs, "ConfigMap", NAMES.config("sentinel"))["data"]
    assert redis_cm["init.sh"] == sentinel_cm["init.sh"]  # one script for both roles
    redis_sts = _by_name(objs, "StatefulSet", NAMES.component("redis-state"))
    sentinel_sts = _by_name(objs, "StatefulSet", NAMES.component("sentinel"))
    api = _by_name(objs, "Deployment", NAMES.component("api"))
    return Rendered(
        redis_conf=redis_cm["redis.conf"],
        sentinel_conf=sentinel_cm["sentinel.conf"],
        script=redis_cm["init.sh"],
        redis_init_env=_env(redis_sts["spec"]["template"]["spec"]["initContainers"][0]),
        sentinel_init_env=_env(sentinel_sts["spec"]["template"]["spec"]["initContainers"][0]),
        api_env=_env(api["spec"]["template"]["spec"]["containers"][0]),
    )


def _replace_lines(text: str, replacements: dict[str, str]) -> str:
    """Swap whole lines (each must be there: a renamed setting fails the test)."""
    lines = text.splitlines()
    for old, new in replacements.items():
        assert old in lines, f"{old!r} not in the rendered config"
        lines[lines.index(old)] = new
    return "\n".join(lines) + "\n"


class Group:
    """Three Redis 'pods' and three Sentinel 'pods' on loopback, from the rendered files."""

    def __init__(self, binary: str, root: Path, r: Rendered) -> None:
        argv = sentinel_argv()
        assert argv is not None
        self.binary, self.root, self.r, self.sentinel_argv = binary, root, r, argv
        self.redis_ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.script = root / "init.sh"
        self.script.write_text(r.script)
        auth = root / "auth.conf"
        auth.write_text(redis_auth_conf((PASSWORD,), PASSWORD))
        self.redis: list[RedisProcess | None] = [None] * 3
        self.sentinels: list[SentinelProcess] = []
        self.pod_dirs = []
        for i, port in enumerate(self.redis_ports):
            pod = root / f"redis-{i}"
            pod.mkdir()
            (pod / "redis.conf").write_text(
                _replace_lines(
                    r.redis_conf,
                    {
                        "bind 0.0.0.0": "bind 127.0.0.1",
                        "port 6379": f"port {port}",
                        "dir /data": f"dir {pod}",
                        "include /etc/redis-auth/auth.conf": f"include {auth}",
                    },
                )
            )
            self.pod_dirs.append(pod)

    @property
    def sentinel_list(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def init_env(self, rendered_env: dict[str, str], **own: str) -> dict[str, str]:
        """The rendered init env with the addresses moved to loopback; every rendered
        variable must be mapped (a new one fails here until the test knows it)."""
        assert set(rendered_env) == INIT_ENV, set(rendered_env) ^ INIT_ENV
        assert rendered_env["SENTINELS"].count(",") == 2  # three sentinel pods
        loopback = {
            "ANNOUNCE_HOST": "127.0.0.1",
            "SENTINELS": self.sentinel_list,
            "PRIMARY": f"127.0.0.1:{self.redis_ports[0]}",
            "REDISCLI_AUTH": PASSWORD,
            **own,
        }
        env = {k: loopback.get(k, v) for k, v in rendered_env.items()}
        return {"PATH": os.environ["PATH"], **env}

    def run_init(self, role: str, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["sh", str(self.script), role],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def redis_init(self, i: int) -> subprocess.Popen[str]:
        pod = self.pod_dirs[i]
        env = self.init_env(
            self.r.redis_init_env,
            POD_NAME=f"redis-state-{i}",
            REDIS_PORT=str(self.redis_ports[i]),
            CONF_IN=str(pod / "redis.conf"),
            CONF_OUT=str(pod / "runtime.conf"),
        )
        return self.run_init("redis", env)

    def start_redis(self, i: int) -> RedisProcess:
        pod = self.pod_dirs[i]
        server = RedisProcess(
            self.binary, self.redis_ports[i], pod, PASSWORD, conf=pod / "runtime.conf"
        )
        server.start()
        self.redis[i] = server
        return server

    def start_sentinel(self, j: int) -> SentinelProcess:
        pod = self.root / f"sentinel-{j}"
        pod.mkdir()
        template = pod / "sentinel.template.conf"
        port = self.sentinel_ports[j]
        template.write_text(
            _replace_lines(
                self.r.sentinel_conf,
                {
                    "port 26379": f"port {port}",
                    "bind 0.0.0.0": "bind 127.0.0.1",
                    "dir /data": f"dir {pod}",
                },
            )
        )
        env = self.init_env(
            self.r.sentinel_init_env,
            POD_NAME=f"sentinel-{j}",
            CONF_IN=str(template),
            CONF_OUT=str(pod / "sentinel.conf"),
        )
        finish(self.run_init("sentinel", env))
        sentinel = SentinelProcess(
            self.sentinel_argv, pod / "sentinel.conf", port=port, password=PASSWORD
        )
        self.sentinels.append(sentinel)
        return sentinel

    def master_port(self) -> int:
        return named_master_port(self.sentinels[0])

    def stop(self) -> None:
        stop_all(self.sentinels, self.redis)


def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def role_of(port: int) -> dict[str, Any]:
    c = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, socket_timeout=1.0)
    try:
        return dict(c.info("replication"))
    finally:
        c.close()


@pytest.fixture
def group(redis_binary: str, tmp_path: Path) -> Iterator[Group]:
    if sentinel_argv() is None:
        pytest.skip("redis-sentinel is not on PATH (Debian package redis-sentinel)")
    g = Group(redis_binary, tmp_path, rendered())
    try:
        # Bootstrap: no sentinel runs yet, so every pod's init step falls back to ordinal 0.
        for i in range(3):
            out = finish(g.redis_init(i))
            assert "no sentinel answered" in out, out
        assert "replicaof" not in (g.pod_dirs[0] / "runtime.conf").read_text()
        assert (
            f"replicaof 127.0.0.1 {g.redis_ports[0]}"
            in (g.pod_dirs[1] / "runtime.conf").read_text()
        )
        for i in range(3):
            g.start_redis(i)
        primary = g.redis[0]
        assert primary is not None
        wait_online(primary, 2)
        for j in range(3):
            g.start_sentinel(j)
        for s in g.sentinels:
            s.wait_ready(2, 2)
        yield g
    finally:
        g.stop()


def test_rendered_group_fails_over_and_the_old_primary_rejoins(group: Group) -> None:
    r = group.r
    assert r.api_env["INDEXFORGE_STATE_REDIS_MASTER"] == MASTER
    assert "INDEXFORGE_STATE_REDIS_URL" not in r.api_env
    sentinels = r.api_env["INDEXFORGE_STATE_REDIS_SENTINELS"].split(",")
    assert sentinels == [
        f"{NAMES.component('sentinel')}-{j}.{NAMES.fqdn(NAMES.headless('sentinel'))}:26379"
        for j in range(3)
    ]
    settings = api_settings(
        state_redis_sentinels=group.sentinel_list,  # the same three pods, on loopback
        state_redis_master=r.api_env["INDEXFORGE_STATE_REDIS_MASTER"],
        state_redis_wait_replicas=int(r.api_env["INDEXFORGE_STATE_REDIS_WAIT_REPLICAS"]),
        state_redis_password=PASSWORD,
        state_redis_wait_timeout_ms=200,
        breaker_reset_seconds=0.5,
    )
    assert settings.state_redis_wait_replicas >= 1
    old = group.redis_ports[0]
    assert group.master_port() == old
    asyncio.run(_fail_over(group, settings))

    # The old primary's pod restarts: its init step now learns the promoted primary.
    new = group.master_port()
    assert new != old
    out = finish(group.redis_init(0))
    assert f"sentinels name 127.0.0.1:{new}" in out, out
    assert f"replicaof 127.0.0.1 {new}" in (group.pod_dirs[0] / "runtime.conf").read_text()
    group.start_redis(0)
    deadline = time.monotonic() + 30
    info = role_of(old)
    while time.monotonic() < deadline and info.get("master_link_status") != "up":
        time.sleep(0.2)
        info = role_of(old)
    assert info["role"] == "slave" and info["master_port"] == new, info
    # It holds what was written after the failover, and the sentinels count it as a replica.
    rejoined = redis.Redis(host="127.0.0.1", port=old, password=PASSWORD)
    try:
        assert rejoined.keys("*after-*"), "the rejoined replica did not sync"
    finally:
        rejoined.close()
    c = group.sentinels[0].client()
    try:
        for _ in range(100):
            replicas = {int(s["port"]): s for s in c.sentinel_slaves(MASTER)}
            if old in replicas and not replicas[old]["is_sdown"]:
                break
            time.sleep(0.2)
        assert old in replicas and not replicas[old]["is_sdown"], replicas
    finally:
        c.close()


async def _fail_over(group: Group, settings: Any) -> None:
    client = state_redis(settings)
    assert client is not None
    jobs = JobStore(state_cache(settings, client, CollectorRegistry()), ttl=600)
    confirmed: list[str] = []
    try:
        for i in range(10):
            assert await jobs.cache.set(JobStore.key(f"before-{i}"), {"id": i}, ttl=600)
            confirmed.append(f"before-{i}")
        primary = group.redis[0]
        assert primary is not None
        primary.kill()
        killed = time.monotonic()
        # The pod restarting at once: its init step finds itself named the primary and
        # waits for the sentinels to promote another pod instead of coming back empty.
        restarted = group.redis_init(0)
        recovered: float | None = None
        for i in range(2000):  # bounded: ~50 ms per try, stop past the budget
            elapsed = time.monotonic() - killed
            if elapsed > FAILOVER_BUDGET_SECONDS + 10:
                break
            if await jobs.cache.set(JobStore.key(f"after-{i}"), {"id": i}, ttl=600):
                confirmed.append(f"after-{i}")
                recovered = elapsed if recovered is None else recovered
                if len(confirmed) >= 30:
                    break
            await asyncio.sleep(0.05)
        assert recovered is not None, "no confirmed write after the primary was killed"
        print(f"\nrendered state Redis failover: first confirmed write {recovered:.1f} s")
        assert recovered < FAILOVER_BUDGET_SECONDS
        out = await asyncio.to_thread(finish, restarted)
        new = group.master_port()
        assert new != group.redis_ports[0]
        assert f"replicaof 127.0.0.1 {new}" in (group.pod_dirs[0] / "runtime.conf").read_text()
        assert "sentinels name" in out, out
        promoted = redis.Redis(host="127.0.0.1", port=new, password=PASSWORD)
        try:
            keys = [jobs.cache.value_key(JobStore.key(j)) for j in confirmed]
            assert all(promoted.exists(k) for k in keys), "a confirmed job record was lost"
        finally:
            promoted.close()
    finally:
        await jobs.cache.close()

"""A real replicated Redis on loopback: a primary, replicas (`replicaof`) and three
`redis-sentinel` processes (quorum 2), as the operator deploys the state Redis with
`replication.enabled`. Sentinel rewrites its config file, so each gets its own."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.procs import free_port
from tests.services.conftest import RedisProcess, start_redis

MASTER = "indexforge-state"


def sentinel_argv() -> list[str] | None:
    """`redis-sentinel` (Debian package redis-sentinel) or `redis-server --sentinel`, the
    same program under another name."""
    if binary := shutil.which("redis-sentinel"):
        return [binary]
    if binary := shutil.which("redis-server"):
        return [binary, "--sentinel"]
    return None


class SentinelProcess:
    """`redis-sentinel <conf>` listening on `port` (the config file says so)."""

    def __init__(self, argv: list[str], conf: Path, *, port: int, password: str) -> None:
        self.port = port
        self.conf = conf
        self.password = password
        self.proc = subprocess.Popen(
            [*argv[:1], str(self.conf), *argv[1:]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @classmethod
    def monitoring(
        cls,
        argv: list[str],
        workdir: Path,
        *,
        primary_port: int,
        password: str,
        down_after_ms: int,
    ) -> SentinelProcess:
        """A sentinel with a config written here (not the operator's)."""
        port = free_port()
        conf = workdir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {workdir}\n"
            f"logfile {workdir}/sentinel-{port}.log\n"
            f"requirepass {password}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
            f"sentinel auth-pass {MASTER} {password}\n"
            f"sentinel down-after-milliseconds {MASTER} {down_after_ms}\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        return cls(argv, conf, port=port, password=password)

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1.0
        )

    def wait_ready(self, replicas: int, others: int, timeout: float = 20.0) -> None:
        """Until this sentinel knows the primary, `replicas` replicas and `others` other
        sentinels (a failover needs a majority of them to elect a leader)."""
        deadline = time.monotonic() + timeout
        c = self.client()
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-sentinel exited with {self.proc.returncode}")
                try:
                    known = c.sentinel_master(MASTER)
                    if (
                        len(c.sentinel_slaves(MASTER)) >= replicas
                        and int(known["num-other-sentinels"]) >= others
                    ):
                        return
                except redis.exceptions.RedisError:
                    pass
                time.sleep(0.1)
        finally:
            c.close()
        raise RuntimeError(f"sentinel on {self.port} did not see its replicas and peers")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@dataclass
class ReplicatedRedis:
    primary: RedisProcess
    replicas: list[RedisProcess]
    sentinels: list[SentinelProcess] = field(default_factory=list)

    @property
    def sentinel_list(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def master_port(self) -> int:
        return named_master_port(self.sentinels[0])

    def stop(self) -> None:
        stop_all(self.sentinels, [self.primary, *self.replicas])


def named_master_port(sentinel: SentinelProcess) -> int:
    """The primary's port as `sentinel` currently names it."""
    c = sentinel.client()
    try:
        _, port = c.sentinel_get_master_addr_by_name(MASTER)
    finally:
        c.close()
    return int(port)


def stop_all(sentinels: list[SentinelProcess], servers: list[RedisProcess | None]) -> None:
    """Sentinels first, so none of them starts a failover while the servers go."""
    for s in sentinels:
        s.stop()
    for r in servers:
        if r is not None:
            r.stop()


def wait_online(primary: RedisProcess, replicas: int, timeout: float = 20.0) -> None:
    """Until `replicas` replicas finished their first sync (WAIT counts only those)."""
    c = redis.Redis(host="127.0.0.1", port=primary.port, password=primary.password)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            info = c.info("replication")
            states = [info.get(f"slave{i}", {}).get("state") for i in range(replicas)]
            if states.count("online") == replicas:
                return
            time.sleep(0.1)
    finally:
        c.close()
    raise RuntimeError(f"replicas of {primary.port} not online in {timeout}s")


def start_replicated(
    binary: str,
    workdir: Path,
    *,
    password: str,
    replicas: int = 2,
    sentinels: int = 3,
    down_after_ms: int = 5000,
) -> ReplicatedRedis:
    """`down_after_ms` as the operator renders it by default (a primary silent for 5 s is
    down: long enough that a busy moment is no failover)."""
    argv = sentinel_argv()
    assert argv is not None
    # noeviction like the state Redis; masterauth so any of them can follow a new primary.
    state = [
        "--maxmemory-policy", "noeviction", "--masterauth", password,
        "--repl-diskless-sync-delay", "0",  # the first sync of a replica at once, not in 5 s
    ]  # fmt: skip
    primary = start_redis(binary, workdir, password=password, extra=state)
    group = ReplicatedRedis(primary, [])
    try:
        for _ in range(replicas):
            group.replicas.append(
                start_redis(
                    binary,
                    workdir,
                    password=password,
                    extra=[*state, "--replicaof", "127.0.0.1", str(primary.port)],
                )
            )
        for _ in range(sentinels):
            group.sentinels.append(
                SentinelProcess.monitoring(
                    argv,
                    workdir,
                    primary_port=primary.port,
                    password=password,
                    down_after_ms=down_after_ms,
                )
            )
        wait_online(primary, replicas)
        for s in group.sentinels:
            s.wait_ready(replicas, sentinels - 1)
    except BaseException:
        group.stop()
        raise
    return group

"""A Redis password rotates under load with no failed command and no Redis restart.

Real: redis-server (Debian), the in-pod ACL sync script (builders/redis_acl.py, run with
/bin/sh and the real redis-cli), the services' Redis client (services/common/cache.py
``redis_client`` with the re-reading credential provider). The files stand in for the
mounted Secret volume (replaced by rename, as the kubelet does); the steps the operator would
take are done by the test, each one only after the previous one was observed (what the
gateway key rotation does with Kong's rollout).

The client keeps issuing commands and drops its connections every few commands (as failovers,
restarts and idle timeouts do), so new connections authenticate throughout the rotation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from indexforge_operator.builders.redis_acl import ACL_SYNC_SCRIPT, acl_user_line
from services.common.cache import redis_client
from tests.waiting import wait_for

from .conftest import RedisProcess, free_port, start_redis

OLD, NEW = "old-password-0123456789", "new-password-9876543210"


def _replace(path: Path, *lines: str) -> None:
    fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fresh.write_text("".join(f"{line}\n" for line in lines))
    os.replace(fresh, path)


def _accepts(server: RedisProcess, password: str) -> bool:
    client = redis.Redis(host="127.0.0.1", port=server.port, password=password, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.exceptions.AuthenticationError:
        return False
    finally:
        client.close()


@pytest.fixture
def rotating_redis(redis_binary: str, tmp_path: Path) -> Iterator[tuple[RedisProcess, Path, Path]]:
    """A Redis started with the old password (requirepass, as deployed today), the sync
    script beside it, and (accepted passwords file, applied-list file)."""
    server = start_redis(redis_binary, tmp_path, password=OLD)
    passwords, applied = tmp_path / "passwords", tmp_path / "applied"
    _replace(passwords, OLD)
    script = tmp_path / "acl-sync.sh"
    script.write_text(ACL_SYNC_SCRIPT)
    env = {**os.environ, "REDIS_PASSWORDS_FILE": str(passwords), "REDIS_PORT": str(server.port),
           "REDIS_ACL_SYNC_SECONDS": "0.2", "REDIS_ACL_APPLIED_FILE": str(applied)}  # fmt: skip
    log = (tmp_path / "acl-sync.log").open("w")
    sync = subprocess.Popen(["/bin/sh", str(script)], env=env, stdout=log, stderr=log)
    try:
        yield server, passwords, applied
    finally:
        sync.terminate()
        sync.wait(timeout=10)
        log.close()
        server.stop()


def _applied(applied: Path, *want: str) -> bool:
    return applied.exists() and applied.read_text().split() == list(want)


def test_the_sync_script_never_empties_the_list_nor_guesses(
    rotating_redis: tuple[RedisProcess, Path, Path], tmp_path: Path
) -> None:
    server, passwords, applied = rotating_redis
    wait_for(lambda: _applied(applied, OLD), timeout=10, what="old password applied")
    # An empty file (a Secret key gone) must not leave Redis without a password.
    _replace(passwords)
    time.sleep(1)  # five sync intervals
    assert _applied(applied, OLD) and _accepts(server, OLD)
    # Someone changed the password behind its back: neither the listed passwords nor the
    # last applied one authenticate, so nothing is applied and the script says so.
    admin = redis.Redis(host="127.0.0.1", port=server.port, password=OLD)
    admin.execute_command("ACL", "SETUSER", "default", "resetpass", ">drifted-password")
    admin.close()
    _replace(passwords, NEW)
    time.sleep(1)
    assert _applied(applied, OLD)
    assert not _accepts(server, NEW) and _accepts(server, "drifted-password")
    assert "no listed password authenticates" in (tmp_path / "acl-sync.log").read_text()


def test_a_skipped_overlap_step_still_applies_with_the_last_applied_password(
    rotating_redis: tuple[RedisProcess, Path, Path],
) -> None:
    server, passwords, applied = rotating_redis
    wait_for(lambda: _applied(applied, OLD), timeout=10, what="old password applied")
    _replace(passwords, NEW)  # both kubelet updates landed within one sync period
    wait_for(lambda: _applied(applied, NEW), timeout=10, what="new password applied")
    assert _accepts(server, NEW) and not _accepts(server, OLD)


def test_password_rotates_under_load_without_auth_failures(
    rotating_redis: tuple[RedisProcess, Path, Path], tmp_path: Path
) -> None:
    server, passwords, applied = rotating_redis
    client_file = tmp_path / "client-password"
    _replace(client_file, OLD)
    wait_for(lambda: _applied(applied, OLD), timeout=10, what="old password applied")

    async def scenario() -> tuple[int, int, list[str]]:
        # An env value would be fixed for the process's life: the file wins.
        client = redis_client(server.url, socket_timeout=2, password="stale-env-value",
                              password_file=client_file)  # fmt: skip
        stop = asyncio.Event()
        counts = {"ok": 0, "auth": 0}

        async def load() -> None:
            n = 0
            while not stop.is_set():
                try:
                    await client.set(f"k{n % 50}", n)
                    await client.get(f"k{n % 50}")
                    counts["ok"] += 1
                except redis.exceptions.AuthenticationError:
                    counts["auth"] += 1
                n += 1
                if n % 5 == 0:  # new connections authenticate again
                    await client.connection_pool.disconnect()
                await asyncio.sleep(0.005)

        async def wait(what: str, probe: object) -> None:
            for _ in range(400):
                if probe():  # type: ignore[operator]
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"timed out waiting for {what}")

        task = asyncio.create_task(load())
        steps = []
        await asyncio.sleep(0.5)
        _replace(passwords, NEW, OLD)  # 1. Redis accepts both
        await wait("new+old applied", lambda: _applied(applied, NEW, OLD))
        steps.append("overlap")
        await asyncio.sleep(0.5)
        _replace(client_file, NEW)  # 2. clients move to the new password
        await asyncio.sleep(0.5)
        steps.append("published")
        _replace(passwords, NEW)  # 3. the old one goes
        await wait("new only applied", lambda: _applied(applied, NEW))
        steps.append("retired")
        await asyncio.sleep(0.5)
        stop.set()
        await task
        await client.aclose()
        return counts["ok"], counts["auth"], steps

    ok, auth_failures, steps = asyncio.run(scenario())
    assert steps == ["overlap", "published", "retired"]
    assert auth_failures == 0
    assert ok > 100
    assert not _accepts(server, OLD) and _accepts(server, NEW)


def test_acl_user_line_is_a_config_redis_starts_with(redis_binary: str, tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    port = free_port()
    conf.write_text(f'port {port}\nbind 127.0.0.1\nsave ""\n' + acl_user_line([NEW, OLD]))
    with pytest.raises(ValueError):
        acl_user_line([])
    server = RedisProcess(redis_binary, port, tmp_path, password=NEW, conf=conf)
    server.start()
    try:
        assert _accepts(server, NEW) and _accepts(server, OLD)
        assert not _accepts(server, "anything-else")
    finally:
        server.stop()

"""The Redis restore Job's script (builders/redis_restore.py) run on real processes: a real
`redis-server` with the redis.conf the operator renders (AOF on, the default, and off), the
backup CronJob's own command writing the backup, then the restore Job's own command
against the stopped server's data directory (loopback, paths mapped to this machine).

Unhappy paths first: a corrupt or missing backup fails the script and leaves every byte of
the data directory as it was (Redis starts with the data it had).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from indexforge_operator.builders import build_backups
from indexforge_operator.builders.backup import TARGET_DIR
from indexforge_operator.builders.redis import redis_conf
from indexforge_operator.builders.redis_restore import DATA_DIR, restore_job
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.procs import free_port

NAMES = Names("restore", "shop")
BACKUP = {"enabled": True, "target": {"volume": {"claimName": "backups"}}}
COMPONENT = "redis-state"


def _spec(appendonly: bool) -> IndexForgeSpec:
    return IndexForgeSpec.model_validate(
        {"backup": BACKUP, "redis": {"state": {"appendonly": appendonly}}}
    )


@dataclass
class Server:
    """A redis-server running the operator's rendered redis.conf on loopback."""

    conf: Path
    data: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> redis.Redis:
        quiet = subprocess.DEVNULL
        self.proc = subprocess.Popen(["redis-server", str(self.conf)], stdout=quiet, stderr=quiet)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return client
            except redis.exceptions.BusyLoadingError:
                time.sleep(0.05)
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.data / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server did not start:\n{log}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SHUTDOWN as a pod's SIGTERM would: AOF flushed, no RDB written (save "")."""
        if self.proc is None:
            return
        self.proc.terminate()
        self.proc.wait(timeout=15)
        self.proc = None


@pytest.fixture(params=[True, False], ids=["appendonly", "rdb-only"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Any]]:
    if shutil.which("redis-server") is None or shutil.which("redis-check-rdb") is None:
        pytest.skip("redis-server/redis-check-rdb not on PATH (Debian redis-server, redis-tools)")
    spec = _spec(request.param)
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    rendered = redis_conf(spec.redis.state, instance_name=NAMES.instance, role=COMPONENT)
    assert ("appendonly yes" in rendered) is request.param
    local = []
    for line in rendered.splitlines():  # pod paths and addresses -> this machine's
        if line.startswith("bind "):
            line = "bind 127.0.0.1"
        elif line.startswith("port "):
            line = f"port {port}"
        elif line.startswith("dir "):
            line = f"dir {data}"
        elif line.startswith("include "):
            continue  # the password: not what this test is about
        local.append(line)
    local.append(f"logfile {data / 'redis.log'}")
    conf = tmp_path / "redis.conf"
    conf.write_text("\n".join(local) + "\n")
    srv = Server(conf, data, port)
    yield srv, spec
    srv.stop()


def _local(arg: str, *, port: int, root: Path, data: Path) -> str:
    """A rendered argument with the pod's host, port and mount paths mapped to this machine."""
    if arg == NAMES.fqdn(NAMES.component(COMPONENT)):
        return "127.0.0.1"
    if arg == "6379":
        return str(port)
    if arg == DATA_DIR:
        return str(data)
    if arg.startswith(TARGET_DIR + "/"):
        return str(root / arg.removeprefix(TARGET_DIR + "/"))
    return arg


def _backup(spec: IndexForgeSpec, port: int, root: Path) -> Path:
    """Run the backup CronJob's own command; the file it wrote."""
    (cron,) = [o for o in build_backups(spec, NAMES, [COMPONENT]) if o["kind"] == "CronJob"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    command = [_local(a, port=port, root=root, data=Path("/nowhere"))
               for a in pod["containers"][0]["command"]]  # fmt: skip
    assert command[:3] == ["python", "-m", "indexforge_services.common.backup"]
    done = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (written,) = (root / COMPONENT).iterdir()
    return written


def _restore(spec: IndexForgeSpec, backup_id: str, root: Path, data: Path) -> Any:
    """Run the restore Job's own command (sh -c SCRIPT restore <backup> <data>)."""
    job = restore_job(spec, NAMES, spec.redis.state, COMPONENT, name="r", backup_id=backup_id)
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["sh", "-c"]
    local = [_local(a, port=0, root=root, data=data) for a in command]
    return subprocess.run(local, capture_output=True, text=True, timeout=60, check=False)


def _fingerprint(data: Path) -> dict[str, str]:
    return {
        str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data.rglob("*"))
        if p.is_file() and p.name != "redis.log"
    }


def _fill(client: redis.Redis) -> None:
    client.set("job:1", "completed")
    client.hset("doc:7", mapping={"source": "a.csv", "records": "12"})
    client.rpush("queue", "a", "b", "c")
    client.set("session", "s", ex=3600)


def _is_backed_up_state(client: redis.Redis) -> None:
    assert client.get("job:1") == b"completed"
    assert client.hgetall("doc:7") == {b"source": b"a.csv", b"records": b"12"}
    assert client.lrange("queue", 0, -1) == [b"a", b"b", b"c"]
    assert 0 < client.ttl("session") <= 3600
    assert client.get("after") is None and client.dbsize() == 4


def _change(client: redis.Redis) -> None:
    client.set("job:1", "failed")
    client.delete("doc:7")
    client.set("after", "written after the backup")
    client.save()  # persisted in both modes (appendonly no keeps only what an RDB holds)


def _is_changed_state(client: redis.Redis) -> None:
    assert client.get("job:1") == b"failed" and client.get("after") is not None
    assert client.exists("doc:7") == 0


def test_a_corrupt_or_missing_backup_fails_and_leaves_the_data_untouched(
    server: tuple[Server, Any], tmp_path: Path
) -> None:
    srv, spec = server
    client = srv.start()
    _fill(client)
    good = _backup(spec, srv.port, tmp_path / "backup")
    _change(client)
    srv.stop()
    before = _fingerprint(srv.data)
    assert before, "the stopped Redis left its data"

    # Truncated (a backup cut short), garbage with the right magic, and a missing file.
    damaged = [("redis-20261202T000001Z.rdb", good.read_bytes()[:-20]),
               ("redis-20261202T000002Z.rdb", b"REDIS0011" + b"\x00" * 64)]  # fmt: skip
    for name, content in damaged:
        (good.parent / name).write_bytes(content)
        done = _restore(spec, name, tmp_path / "backup", srv.data)
        assert done.returncode != 0
        assert "not a valid RDB file; the data in" in done.stderr and "untouched" in done.stderr
        assert _fingerprint(srv.data) == before
    done = _restore(spec, "redis-20261202T000003Z.rdb", tmp_path / "backup", srv.data)
    assert done.returncode != 0 and "not found" in done.stderr, done.stderr
    assert good.name in done.stderr  # it lists the backups there are
    assert _fingerprint(srv.data) == before
    assert sorted(p.name for p in srv.data.iterdir() if p.name.startswith(".")) == []

    _is_changed_state(srv.start())  # Redis starts with the data it had


def test_backup_change_stop_restore_start_gives_the_backed_up_keys(
    server: tuple[Server, Any], tmp_path: Path
) -> None:
    srv, spec = server
    client = srv.start()
    _fill(client)
    good = _backup(spec, srv.port, tmp_path / "backup")
    _change(client)
    _is_changed_state(client)
    srv.stop()

    done = _restore(spec, good.name, tmp_path / "backup", srv.data)
    assert done.returncode == 0, done.stderr
    assert f"{good.name} restored into" in done.stdout
    assert not [p for p in srv.data.iterdir() if p.name.startswith(".restore")]
    _is_backed_up_state(srv.start())

    # Writes after the restore persist across a restart (the AOF / RDB Redis now owns).
    later = redis.Redis(host="127.0.0.1", port=srv.port, socket_timeout=5)
    later.set("later", "1")
    later.execute_command("SAVE")  # what appendonly no persists with (save "")
    srv.stop()
    again = srv.start()
    assert again.get("later") == b"1" and again.get("job:1") == b"completed"


def _replica_of(srv: Server, tmp_path: Path) -> Server:
    """A second server with the same rendered config, a data directory of its own and the
    `replicaof` line the replicated pods' init step adds."""
    port = free_port()
    data = tmp_path / "replica-data"
    data.mkdir()
    lines = []
    for line in srv.conf.read_text().splitlines():
        if line.startswith("port "):
            line = f"port {port}"
        elif line.startswith("dir "):
            line = f"dir {data}"
        elif line.startswith("logfile "):
            line = f"logfile {data / 'redis.log'}"
        lines.append(line)
    lines.append(f"replicaof 127.0.0.1 {srv.port}")
    conf = tmp_path / "replica.conf"
    conf.write_text("\n".join(lines) + "\n")
    return Server(conf, data, port)


def _synced(client: redis.Redis) -> bool:
    """Linked to its primary, the sync loaded, and no AOF rewrite (a replica rewrites its AOF
    after a full sync, and Redis refuses to shut down while writing that initial AOF)."""
    info = client.info("replication")
    if info.get("master_link_status") != "up" or info.get("master_sync_in_progress"):
        return False
    persistence = client.info("persistence")
    busy = ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress")
    return not any(persistence.get(k) for k in busy)


def test_a_replica_with_the_old_data_resyncs_from_the_restored_primary(
    server: tuple[Server, Any], tmp_path: Path
) -> None:
    """With replication only the -0 pod's volume is restored; the replicas keep their old
    data until they sync from it. That sync must replace it, not keep it."""
    srv, spec = server
    client = srv.start()
    replica = _replica_of(srv, tmp_path)
    try:
        _fill(client)
        good = _backup(spec, srv.port, tmp_path / "backup")
        _change(client)
        rclient = replica.start()
        deadline = time.monotonic() + 30
        while not (_synced(rclient) and rclient.get("after") is not None):
            assert time.monotonic() < deadline, rclient.info("replication")
            time.sleep(0.1)
        rclient.save()
        replica.stop()  # the replica's volume holds the changed data
        srv.stop()

        assert _restore(spec, good.name, tmp_path / "backup", srv.data).returncode == 0
        _is_backed_up_state(srv.start())
        rclient = replica.start()
        deadline = time.monotonic() + 30
        while not _synced(rclient):
            assert time.monotonic() < deadline, rclient.info("replication")
            time.sleep(0.1)
        _is_backed_up_state(rclient)
    finally:
        replica.stop()

"""Weaviate and Redis backups that restore, on a real `weaviate-server` and real `redis-server`.

- Weaviate: documents indexed through the API (upload -> ML vectors -> Weaviate, API-key
  auth as deployed), backed up by the backup program through Weaviate's backup API into a
  `backup-filesystem` directory, Weaviate stopped and its data directory wiped, restarted
  empty, restored: a new API app finds every document by search.
- Redis: keys of several types (and a TTL) snapshotted over the network (SYNC), FLUSHALL,
  restored into the stopped server's directory; Redis comes back with every key, with AOF on
  (as deployed) and off.
- Unhappy paths: the backup directory missing or replaced by a file, an unknown backup id,
  Weaviate down, wrong Redis password, Redis down, a transfer cut short, a damaged backup:
  exit 1 with a message, nothing left under a backup's name.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from indexforge_services.api.app import create_app as create_api_app
from indexforge_services.common import backup, backup_redis
from tests.procs import free_port
from tests.stack.weaviate import WeaviateProcess, weaviate_env

from .conftest import RedisProcess, ServerThread, api_settings, start_redis, wait_job

WEAVIATE_KEY = "backup-test-key"
ROWS = [
    ("Umbrella", "A folding umbrella that keeps you dry when it rains"),
    ("Electric kettle", "Boils water for tea in about a minute"),
    ("Sunscreen", "Protects skin from sunburn at the beach"),
    ("Bicycle lock", "A heavy chain that stops thieves taking your bike"),
    ("Tent", "Sleeps two people on a camping trip in the mountains"),
]


class BackupWeaviate(WeaviateProcess):
    """Weaviate as deployed with backups on: the backup-filesystem module beside the
    vectorizer, writing to `backups`."""

    def __init__(self, workdir: Path, inference_url: str, backups: Path) -> None:
        super().__init__(workdir, inference_url, api_key=WEAVIATE_KEY)
        self.backups = backups

    def env(self) -> dict[str, str]:
        return {
            **weaviate_env(self.ports, self.data_dir, self.inference_url, api_key=self.api_key),
            "ENABLE_MODULES": "text2vec-transformers,backup-filesystem",
            "BACKUP_FILESYSTEM_PATH": str(self.backups),
        }

    def collections(self) -> list[str]:
        request = urllib.request.Request(
            f"{self.url}/v1/schema", headers={"Authorization": f"Bearer {WEAVIATE_KEY}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return [c["class"] for c in json.loads(response.read()).get("classes", [])]


@pytest.fixture
def weaviate_with_backups(ml_server: ServerThread, tmp_path: Path) -> Iterator[BackupWeaviate]:
    backups = tmp_path / "backup" / "weaviate"
    backups.mkdir(parents=True)
    server = BackupWeaviate(tmp_path / "weaviate", ml_server.url, backups)
    server.start()
    yield server
    server.stop()


def _api(weaviate: BackupWeaviate, ml: ServerThread, excel: ServerThread, collection: str) -> Any:
    settings = api_settings(
        weaviate_url=weaviate.url,
        weaviate_grpc_port=weaviate.ports.grpc,
        weaviate_api_key=WEAVIATE_KEY,
        weaviate_collection=collection,
        ml_url=ml.url,
        excel_url=excel.url,
    )
    return ServerThread(create_api_app(settings))


def _found(client: httpx.Client) -> set[str]:
    """Names of the rows whose own description finds them first."""
    found = set()
    for name, description in ROWS:
        response = client.get("/api/v1/search", params={"q": description, "limit": 3})
        assert response.status_code == 200, response.text[:300]
        results = response.json()["results"]
        if results and name in str(results[0]):
            found.add(name)
    return found


def _weaviate_cli(weaviate: BackupWeaviate, *args: str) -> list[str]:
    return ["weaviate", "--url", weaviate.url, "--backend", "filesystem", *args]


def test_weaviate_backup_wipe_restore_finds_every_document(
    weaviate_with_backups: BackupWeaviate,
    ml_server: ServerThread,
    excel_server: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    weaviate = weaviate_with_backups
    monkeypatch.setenv("WEAVIATE_API_KEY", WEAVIATE_KEY)
    collection = "Backup" + str(free_port())
    csv = "name,description\n" + "".join(f"{n},{d}\n" for n, d in ROWS)
    with (
        _api(weaviate, ml_server, excel_server, collection) as api,
        httpx.Client(base_url=api.url, timeout=60) as client,
    ):
        accepted = client.post(
            "/api/v1/documents", files={"file": ("products.csv", csv.encode(), "text/csv")}
        )
        assert accepted.status_code == 202, accepted.text[:300]
        assert wait_job(client, accepted.json()["job_id"])["status"] == "completed"
        assert _found(client) == {n for n, _ in ROWS}

    # Three backups with retention 2: the oldest is pruned from the backup directory.
    codes = []
    for run in range(3):
        codes.append(
            backup.main(
                _weaviate_cli(weaviate, "--keep", "2", "--backup-dir", str(weaviate.backups))
            )
        )
        if run < 2:
            time.sleep(1.1)  # distinct second-resolution ids
    out = capsys.readouterr()
    assert codes == [0, 0, 0], out.err
    kept = sorted(p.name for p in weaviate.backups.iterdir())
    assert len(kept) == 2 and all(backup.is_backup_name("weaviate", n) for n in kept), kept
    assert "pruned: weaviate-" in out.out

    # Disaster: Weaviate's data is gone.
    weaviate.stop()
    shutil.rmtree(weaviate.data_dir)
    weaviate.start()
    assert weaviate.collections() == []

    # An id that does not exist: a clear error, nothing restored.
    assert (
        backup.main(
            ["restore-weaviate", *_weaviate_cli(weaviate)[1:], "--id", "weaviate-20000101t000000z"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "weaviate-20000101t000000z" in err and "404" in err, err
    assert weaviate.collections() == []

    assert backup.main(["restore-weaviate", *_weaviate_cli(weaviate)[1:], "--id", kept[-1]]) == 0
    assert collection in weaviate.collections()
    with (
        _api(weaviate, ml_server, excel_server, collection) as api,
        httpx.Client(base_url=api.url, timeout=60) as client,
    ):
        assert _found(client) == {n for n, _ in ROWS}


def test_weaviate_backup_failures_are_clear(
    weaviate_with_backups: BackupWeaviate,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    weaviate = weaviate_with_backups
    monkeypatch.setenv("WEAVIATE_API_KEY", WEAVIATE_KEY)
    missing = tmp_path / "no-such-volume"
    assert backup.main(_weaviate_cli(weaviate, "--keep", "2", "--backup-dir", str(missing))) == 1
    assert "not found" in capsys.readouterr().err

    # Weaviate's own target unwritable (a file where its backup directory should be).
    shutil.rmtree(weaviate.backups)
    weaviate.backups.write_text("")
    try:
        assert backup.main(_weaviate_cli(weaviate, "--keep", "2")) == 1
        err = capsys.readouterr().err
        assert "Weaviate" in err and ("FAILED" in err or "422" in err), err
    finally:
        weaviate.backups.unlink()
        weaviate.backups.mkdir()

    # Wrong API key: refused, said so.
    monkeypatch.setenv("WEAVIATE_API_KEY", "wrong")
    assert backup.main(_weaviate_cli(weaviate, "--keep", "2")) == 1
    assert "401" in capsys.readouterr().err
    monkeypatch.setenv("WEAVIATE_API_KEY", WEAVIATE_KEY)

    # Weaviate down: unreachable, nothing written.
    weaviate.stop()
    assert (
        backup.main(_weaviate_cli(weaviate, "--keep", "2", "--backup-dir", str(weaviate.backups)))
        == 1
    )
    assert "Weaviate unreachable" in capsys.readouterr().err
    assert list(weaviate.backups.iterdir()) == []


# -- Redis ------------------------------------------------------------------------------------

PASSWORD = "backup-test-password"


def _fill(client: redis.Redis) -> None:
    client.set("job:1", "completed")
    client.hset("doc:7", mapping={"source": "a.csv", "records": "12"})
    client.rpush("tags:shop", "a", "b", "c")
    client.sadd("members", "x", "y")
    client.set("session", "s", ex=3600)


def _check(client: redis.Redis) -> None:
    assert client.get("job:1") == b"completed"
    assert client.hgetall("doc:7") == {b"source": b"a.csv", b"records": b"12"}
    assert client.lrange("tags:shop", 0, -1) == [b"a", b"b", b"c"]
    assert client.smembers("members") == {b"x", b"y"}
    assert 0 < client.ttl("session") <= 3600
    assert client.dbsize() == 5


def _client(port: int, password: str | None = PASSWORD) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5)


@pytest.fixture
def data_redis(redis_binary: str, tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis whose directory is this test's own (the restore writes into it)."""
    data = tmp_path / "redis-data"
    data.mkdir()
    server = start_redis(redis_binary, data, password=PASSWORD)
    yield server
    server.stop()


def _aof_redis(binary: str, data: Path) -> tuple[subprocess.Popen[bytes], int]:
    """redis-server with AOF on, as the operator configures it (appendonly yes, save "")."""
    port = free_port()
    proc = subprocess.Popen(
        [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--appendonly", "yes", "--save", "", "--requirepass", PASSWORD,
            "--logfile", str(data / "aof.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = _client(port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc, port
        except redis.exceptions.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def test_redis_backup_flush_restore_keys_back(
    data_redis: RedisProcess,
    redis_binary: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDISCLI_AUTH", PASSWORD)
    client = _client(data_redis.port)
    _fill(client)
    target = tmp_path / "backup" / "redis-app"
    argv = ["redis", "--host", "127.0.0.1", "--port", str(data_redis.port), "--target", str(target)]
    codes = []
    for run in range(3):
        codes.append(backup.main([*argv, "--keep", "2"]))
        if run < 2:
            time.sleep(1.1)
    assert codes == [0, 0, 0], capsys.readouterr().err
    kept = sorted(p.name for p in target.iterdir())
    assert len(kept) == 2 and all(backup.is_backup_name("redis", n) for n in kept), kept
    assert client.ping()  # the snapshot connection did not disturb the server

    client.flushall()
    assert client.dbsize() == 0
    data_redis.stop()  # stopped, as the restore requires
    data = data_redis.workdir
    latest = target / kept[-1]
    restore = ["restore-redis", "--backup", str(latest), "--data-dir", str(data)]
    assert backup.main(restore) == 1  # the SYNC left a dump.rdb: not replaced without --force
    assert "--force" in capsys.readouterr().err
    assert backup.main([*restore, "--force"]) == 0

    data_redis.start()  # appendonly no: loads dump.rdb
    _check(_client(data_redis.port))
    data_redis.stop()
    proc, port = _aof_redis(redis_binary, data)  # appendonly yes: loads the AOF base
    try:
        _check(_client(port))
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    # A cut or damaged backup is refused before anything is replaced.
    good = latest.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    for what, content in (("cut", good[:-20]), ("flipped", bytes(flipped))):
        damaged = tmp_path / f"{what}.rdb"
        damaged.write_bytes(content)
        restore_damaged = ["restore-redis", "--backup", str(damaged), "--data-dir", str(data)]
        assert backup.main([*restore_damaged, "--force"]) == 1, what
        assert "RDB" in capsys.readouterr().err, what
        assert (data / backup_redis.AOF_DIR / backup_redis.AOF_BASE).read_bytes() == good, what


def test_redis_backup_failures_are_clear(
    data_redis: RedisProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "b"
    argv = ["redis", "--host", "127.0.0.1", "--target", str(target), "--keep", "2"]
    monkeypatch.setenv("REDISCLI_AUTH", "wrong")
    assert backup.main([*argv, "--port", str(data_redis.port)]) == 1
    assert "refused AUTH" in capsys.readouterr().err

    monkeypatch.setenv("REDISCLI_AUTH", PASSWORD)
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad_target = ["redis", "--host", "127.0.0.1", "--target", str(blocker / "b"), "--keep", "2"]
    assert backup.main([*bad_target, "--port", str(data_redis.port)]) == 1
    assert "cannot create backup target" in capsys.readouterr().err

    data_redis.stop()
    assert backup.main([*argv, "--port", str(data_redis.port), "--timeout", "2"]) == 1
    assert "Redis unreachable" in capsys.readouterr().err
    assert list(target.iterdir()) == []


def test_redis_transfer_cut_short_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server dies mid-transfer (announced 1 MiB, sent 10 bytes): no backup, no partial."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)  # REPLCONF
            conn.sendall(b"+OK\r\n")
            conn.recv(1024)  # SYNC
            conn.sendall(b"\n$1048576\r\nREDIS0011")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    target = tmp_path / "b"
    code = backup.main(
        [
            "redis",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--target",
            str(target),
            "--keep",
            "2",
        ]
    )
    thread.join(timeout=10)
    listener.close()
    assert code == 1
    assert "closed the connection" in capsys.readouterr().err
    assert list(target.iterdir()) == []

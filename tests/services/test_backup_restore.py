"""Backups that restore, and config reloads that keep the process: on Debian's real
`prometheus` (2.42) and real SQLite.

- Reload: Prometheus runs with the *rendered* prometheus.yml and rule file, mounted the way
  kubelet mounts a ConfigMap (files are symlinks through `..data`, swapped atomically on an
  update); after the swap, POST /-/reload (what the config-reloader sidecar does) serves the
  new rule while the PID and the TSDB stay.
- Backup: samples are written into a TSDB (`promtool tsdb create-blocks-from openmetrics`),
  Prometheus serves it with the admin API on, the backup CLI snapshots and copies it; a NEW
  Prometheus started on the restored directory answers the old series.
- grafana.db: backed up while a writer holds it open mid-transaction, restored, rows intact.
- Unhappy paths: Prometheus unreachable, target unwritable or full -> exit 1 with a message;
  retention deletes only the backup job's own names.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexforge_operator.builders.prometheus import RULES_FILE
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from indexforge_services.common import backup
from tests.procs import free_port
from tests.stack.monitoring import rendered_objects

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="needs Debian's prometheus and promtool (`make system-deps`)",
)
NAMES = Names("demo", "shop")
# Samples two hours back: old enough to be in a persisted block, young enough for retention.
SERIES = "indexforge_backup_probe"


class Prometheus:
    """A prometheus process this test started; stopped by its PID only."""

    def __init__(self, tmp: Path, *, data: Path, args: list[str], port: int | None = None) -> None:
        assert PROMETHEUS is not None
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"prometheus-{self.port}.log"
        self.handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *args,
            ],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"prometheus did not start:\n{self.tail()}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str) -> int:
        request = urllib.request.Request(self.url + path, data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.handle.close()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


def _rendered(raw: dict[str, Any]) -> dict[str, str]:
    objs = rendered_objects(IndexForgeSpec.model_validate(raw), NAMES)
    (cm,) = [
        o
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == NAMES.config("prometheus")
    ]
    return dict(cm["data"])


class ConfigMapVolume:
    """A directory laid out as kubelet's atomic writer does: `..<ts>` holds the files,
    `..data` points at it, each key is a symlink `<key> -> ..data/<key>`; an update writes
    a new `..<ts>` and renames a new `..data` link over the old one."""

    def __init__(self, root: Path, data: dict[str, str]) -> None:
        self.root = root
        root.mkdir()
        self.generation = 0
        self.update(data)
        for key in data:
            (root / key).symlink_to(Path("..data") / key)

    def update(self, data: dict[str, str]) -> None:
        self.generation += 1
        version = self.root / f"..2026_12_02_00_00_0{self.generation}.000"
        version.mkdir()
        for key, text in data.items():
            (version / key).write_text(text)
        tmp_link = self.root / "..data_tmp"
        tmp_link.symlink_to(version.name)
        os.replace(tmp_link, self.root / "..data")


def _loopback(data: dict[str, str], config_dir: Path) -> dict[str, str]:
    """Only paths and addresses change: the rule file's path is the mounted one, targets
    are dropped (irrelevant here) but every other key stays as rendered."""
    config = yaml.safe_load(data["prometheus.yml"])
    config["rule_files"] = [str(config_dir / RULES_FILE)]
    config["scrape_configs"] = []
    config.pop("alerting", None)
    return {"prometheus.yml": yaml.safe_dump(config), RULES_FILE: data[RULES_FILE]}


def _rules(prom: Prometheus) -> dict[str, str]:
    """alert name -> expression, as Prometheus evaluates them now."""
    groups = prom.get("/api/v1/rules")["data"]["groups"]
    return {r["name"]: r["query"] for g in groups for r in g["rules"]}


def _head_series(prom: Prometheus) -> int:
    return int(prom.get("/api/v1/status/tsdb")["data"]["headStats"]["numSeries"])


def test_rule_change_reloads_without_restart(tmp_path: Path) -> None:
    before = _rendered({})
    after = _rendered({"monitoring": {"alerts": {"cpuPercent": 93}}})
    assert before[RULES_FILE] != after[RULES_FILE]
    volume = ConfigMapVolume(tmp_path / "config", _loopback(before, tmp_path / "config"))
    data = tmp_path / "tsdb"
    # Prometheus scrapes itself so the TSDB has a head that must survive the reload.
    config = yaml.safe_load((volume.root / "prometheus.yml").read_text())
    prom_port = free_port()
    config["scrape_configs"] = [
        {
            "job_name": "self",
            "scrape_interval": "1s",
            "static_configs": [{"targets": [f"127.0.0.1:{prom_port}"]}],
        }
    ]
    with_self = {**_loopback(before, volume.root), "prometheus.yml": yaml.safe_dump(config)}
    volume.update(with_self)
    prom = Prometheus(
        tmp_path,
        data=data,
        port=prom_port,  # the port the self-scrape names
        args=[f"--config.file={volume.root / 'prometheus.yml'}", "--web.enable-lifecycle"],
    )
    try:
        old_rules = _rules(prom)
        cpu_rule = next(n for n in old_rules if "CPU" in n or "Cpu" in n)
        assert "0.8" in old_rules[cpu_rule]
        _wait(lambda: _head_series(prom) > 0, "self-scrape samples in the head")
        series_before = _head_series(prom)
        pid = prom.proc.pid
        blocks_before = sorted(p.name for p in data.iterdir())
        config_after = {**_loopback(after, volume.root), "prometheus.yml": yaml.safe_dump(config)}
        volume.update(config_after)  # kubelet's ConfigMap update
        assert prom.post("/-/reload") == 200  # what the config-reloader sidecar sends
        new_rules = _rules(prom)
        assert "0.93" in new_rules[cpu_rule] and "0.8" not in new_rules[cpu_rule]
        assert set(new_rules) == set(old_rules)
        assert prom.proc.poll() is None and prom.proc.pid == pid  # the same process
        assert _head_series(prom) >= series_before  # the head (in-memory data) is kept
        assert set(blocks_before) <= {p.name for p in data.iterdir()}  # WAL and blocks stay
        # Scraping goes on under the new config (the same target, the same process).
        _wait(lambda: _up(prom), "the self-scrape after the reload")
    finally:
        prom.stop()


def _up(prom: Prometheus) -> bool:
    result = prom.get("/api/v1/query", query='up{job="self"}')["data"]["result"]
    return bool(result) and result[0]["value"][1] == "1"


def _wait(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _tsdb_with_samples(tmp: Path) -> tuple[Path, float]:
    """A TSDB directory holding a block of SERIES samples from three hours ago."""
    assert PROMTOOL is not None
    start = int(time.time()) - 3 * 3600
    lines = [f"# TYPE {SERIES} gauge"]
    lines += [f'{SERIES}{{probe="restore"}} {i} {start + 60 * i}' for i in range(60)]
    source = tmp / "samples.om"
    source.write_text("\n".join(lines) + "\n# EOF\n")
    data = tmp / "tsdb"
    data.mkdir()
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    return data, float(start + 60 * 59)


def _empty_config(tmp: Path) -> Path:
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"}, "scrape_configs": []}))
    return config


def _query_value(prom: Prometheus, at: float) -> str | None:
    result = prom.get("/api/v1/query", query=f'{SERIES}{{probe="restore"}}', time=str(at))
    values = result["data"]["result"]
    return str(values[0]["value"][1]) if values else None


def test_prometheus_backup_restores_into_a_new_prometheus(tmp_path: Path) -> None:
    data, last = _tsdb_with_samples(tmp_path)
    config = _empty_config(tmp_path)
    target = tmp_path / "backup" / "prometheus"
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "prometheus").mkdir()
    (target / "notes.txt").write_text("not a backup")  # retention must leave this alone
    (target / "prometheus-latest").mkdir()  # not our name pattern either
    source = Prometheus(
        tmp_path, data=data, args=[f"--config.file={config}", "--web.enable-admin-api"]
    )
    try:
        assert _query_value(source, last) == "59"
        codes = []
        for second in range(3):  # three runs, retention 2
            codes.append(
                backup.main(
                    [
                        "prometheus",
                        "--url",
                        source.url,
                        "--data-dir",
                        str(data),
                        "--target",
                        str(target),
                        "--keep",
                        "2",
                    ]
                )
            )
            if second < 2:
                time.sleep(1.1)  # distinct second-resolution names
    finally:
        source.stop()
    assert codes == [0, 0, 0]
    names = sorted(p.name for p in target.iterdir())
    ours = [n for n in names if backup.is_backup_name("prometheus", n)]
    assert len(ours) == 2  # the oldest was pruned
    assert "notes.txt" in names and "prometheus-latest" in names  # not ours: kept
    assert not any(n.startswith(backup.PARTIAL_PREFIX) for n in names)
    assert not list((data / "snapshots").iterdir())  # the snapshots were removed after copying
    # Restore: a fresh data directory, a NEW Prometheus on it.
    restored = tmp_path / "restored"
    assert (
        backup.main(
            ["restore-prometheus", "--backup", str(target / ours[-1]), "--data-dir", str(restored)]
        )
        == 0
    )
    fresh = Prometheus(tmp_path, data=restored, args=[f"--config.file={config}"])
    try:
        assert _query_value(fresh, last) == "59"
        assert _query_value(fresh, last - 59 * 60) == "0"
    finally:
        fresh.stop()
    # A restore into a non-empty directory is refused without --force.
    assert (
        backup.main(
            ["restore-prometheus", "--backup", str(target / ours[-1]), "--data-dir", str(restored)]
        )
        == 1
    )


def test_prometheus_unreachable_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    closed = free_port()
    code = backup.main(
        [
            "prometheus",
            "--url",
            f"http://127.0.0.1:{closed}",
            "--data-dir",
            str(tmp_path),
            "--target",
            str(tmp_path / "b"),
            "--keep",
            "3",
            "--timeout",
            "2",
        ]
    )
    assert code == 1
    assert "Prometheus unreachable" in capsys.readouterr().err
    assert not any((tmp_path / "b").iterdir())


def test_admin_api_off_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = _tsdb_with_samples(tmp_path)
    prom = Prometheus(tmp_path, data=data, args=[f"--config.file={_empty_config(tmp_path)}"])
    try:
        code = backup.main(
            [
                "prometheus",
                "--url",
                prom.url,
                "--data-dir",
                str(data),
                "--target",
                str(tmp_path / "b"),
                "--keep",
                "3",
            ]
        )
    finally:
        prom.stop()
    assert code == 1
    assert "refused the snapshot" in capsys.readouterr().err


def _grafana_db(path: Path, rows: int) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE dashboard (id INTEGER PRIMARY KEY, title TEXT NOT NULL)")
    db.executemany("INSERT INTO dashboard (title) VALUES (?)", [(f"d{i}",) for i in range(rows)])
    db.commit()
    db.close()


def test_grafana_backup_while_a_writer_holds_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "grafana.db"
    _grafana_db(db_path, 100)
    writer = sqlite3.connect(db_path)  # Grafana, open all the time
    writer.execute("INSERT INTO dashboard (title) VALUES ('committed')")
    writer.commit()
    writer.execute("BEGIN")
    writer.execute("INSERT INTO dashboard (title) VALUES ('uncommitted')")  # mid-transaction
    target = tmp_path / "backup" / "grafana"
    try:
        code = backup.main(
            ["grafana", "--db", str(db_path), "--target", str(target), "--keep", "3"]
        )
    finally:
        writer.rollback()
        writer.close()
    assert code == 0, capsys.readouterr().err
    (copy,) = [p for p in target.iterdir() if backup.is_backup_name("grafana", p.name)]
    # Restore over a damaged database.
    db_path.write_bytes(b"not a database")
    assert backup.main(["restore-grafana", "--backup", str(copy), "--db", str(db_path)]) == 0
    restored = sqlite3.connect(db_path)
    try:
        titles = [r[0] for r in restored.execute("SELECT title FROM dashboard ORDER BY id")]
        assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        restored.close()
    assert len(titles) == 101 and titles[-1] == "committed"  # the committed state only


def test_unwritable_target_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_path = tmp_path / "grafana.db"
    _grafana_db(db_path, 3)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # a target below a file cannot be created, not even by root
    code = backup.main(
        ["grafana", "--db", str(db_path), "--target", str(blocker / "b"), "--keep", "3"]
    )
    assert code == 1
    assert "cannot create backup target" in capsys.readouterr().err
    if os.geteuid() != 0:  # permissions bind everyone but root
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(0o500)
        try:
            code = backup.main(
                ["grafana", "--db", str(db_path), "--target", str(target), "--keep", "3"]
            )
        finally:
            target.chmod(0o700)
        assert code == 1
        assert "not writable" in capsys.readouterr().err


def test_full_target_fails_before_copying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target without room: refused with sizes in the message, nothing half-written."""
    db_path = tmp_path / "grafana.db"
    _grafana_db(db_path, 1000)
    target = tmp_path / "b"
    target.mkdir()
    real = os.statvfs

    class Full:
        f_bavail = 1
        f_frsize = 4096

    monkeypatch.setattr(backup.os, "statvfs", lambda p: Full() if Path(p) == target else real(p))
    code = backup.main(["grafana", "--db", str(db_path), "--target", str(target), "--keep", "3"])
    assert code == 1
    err = capsys.readouterr().err
    assert "4096 bytes free" in err and "backup.retention" in err
    assert not list(target.iterdir())


def test_enospc_while_copying_leaves_no_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The space check passed but the disk filled during the copy (another writer)."""
    db_path = tmp_path / "grafana.db"
    _grafana_db(db_path, 10)
    target = tmp_path / "b"

    def no_space(source: Path, dest: Path) -> None:
        dest.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup, "copy_sqlite", no_space)
    code = backup.main(["grafana", "--db", str(db_path), "--target", str(target), "--keep", "3"])
    assert code == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not list(target.iterdir())


def test_retention_prunes_only_our_names() -> None:
    names = [
        "grafana-20261201T023000Z.db",
        "grafana-20261130T023000Z.db",
        "grafana-20261202T023000Z.db",
        "grafana.db",
        "grafana-20261129T023000Z.db.bak",
        "prometheus-20261101T023000Z",
        ".partial-grafana-20261203T023000Z.db",
    ]
    assert backup.doomed("grafana", names, 2) == ["grafana-20261130T023000Z.db"]
    assert backup.doomed("grafana", names, 5) == []
    assert backup.backup_name("prometheus", 0) == "prometheus-19700101T000000Z"
    assert backup.backup_name("grafana", 0) == "grafana-19700101T000000Z.db"

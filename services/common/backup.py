"""Backups of Prometheus (TSDB snapshot) and Grafana (grafana.db), and their restore.

Run by the backup CronJobs (`python -m indexforge_services.common.backup`) in the API image:
it already carries Python and this package, and this module needs only the standard library.
Each backup is written under a temporary name and renamed when complete, so a failed or
interrupted run never leaves something that looks like a backup; retention then deletes the
oldest backups, and only names this module gives (`<kind>-YYYYmmddTHHMMSSZ[.db]`): other
files in the target are never touched.

    python -m indexforge_services.common.backup prometheus --url http://prom:9090 \
        --data-dir /prometheus --target /b
    ... grafana --db /var/lib/grafana/grafana.db --target /b
    ... restore-prometheus --backup /b/prometheus-... --data-dir /prometheus
    ... restore-grafana --backup /b/grafana-....db --db /var/lib/grafana/grafana.db
    ... redis --host redis-app --port 6379 --target /b/redis-app        (password: $REDISCLI_AUTH)
    ... restore-redis --backup /b/redis-app/redis-....rdb --data-dir /data [--force]
    ... weaviate --url http://weaviate:8080 --backend filesystem --backup-dir /b/weaviate
    ... restore-weaviate --url http://weaviate:8080 --backend filesystem --id weaviate-...
                       (API key: file $WEAVIATE_API_KEY_FILE, re-read; or $WEAVIATE_API_KEY)

Redis and Weaviate live in backup_redis.py and backup_weaviate.py.

Exit status 0: done; 1: the backup or restore failed (the message says why and what).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Kind = Literal["prometheus", "grafana", "redis", "weaviate"]
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
PARTIAL_PREFIX = ".partial-"
_NAME = {
    "prometheus": re.compile(r"^prometheus-[0-9]{8}T[0-9]{6}Z$"),
    "grafana": re.compile(r"^grafana-[0-9]{8}T[0-9]{6}Z\.db$"),
    "redis": re.compile(r"^redis-[0-9]{8}T[0-9]{6}Z\.rdb$"),
    # Weaviate backup ids allow lower case only.
    "weaviate": re.compile(r"^weaviate-[0-9]{8}t[0-9]{6}z$"),
}
_SUFFIX = {"prometheus": "", "grafana": ".db", "redis": ".rdb", "weaviate": ""}


class BackupError(RuntimeError):
    """A backup or restore that failed; the message is what the job logs."""


def backup_name(kind: Kind, now: float) -> str:
    """`prometheus-20261202T023000Z` / `grafana-20261202T023000Z.db` / `redis-...Z.rdb` /
    `weaviate-20261202t023000z` (UTC, sortable)."""
    stamp = time.strftime(STAMP_FORMAT, time.gmtime(now))
    if kind == "weaviate":
        stamp = stamp.lower()
    return f"{kind}-{stamp}{_SUFFIX[kind]}"


def is_backup_name(kind: Kind, name: str) -> bool:
    return _NAME[kind].fullmatch(name) is not None


def doomed(kind: Kind, names: Sequence[str], keep: int) -> list[str]:
    """Which of `names` retention deletes: ours beyond the `keep` newest (names sort by time)."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    ours = sorted(n for n in names if is_backup_name(kind, n))
    return ours[: max(0, len(ours) - keep)]


def prune(kind: Kind, target: Path, keep: int) -> list[str]:
    """Delete our oldest backups beyond `keep`; returns the deleted names."""
    gone = doomed(kind, [p.name for p in target.iterdir()], keep)
    for name in gone:
        path = target / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return gone


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_space(target: Path, needed: int) -> None:
    """Refuse before copying when the target cannot hold the backup (a clear message instead of
    a half-written copy and ENOSPC)."""
    stat = os.statvfs(target)
    free = stat.f_bavail * stat.f_frsize
    if needed > free:
        raise BackupError(
            f"target {target} has {free} bytes free, the backup needs {needed}: "
            "grow the volume or lower backup.retention"
        )


def writable_target(target: Path) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create backup target {target}: {exc}") from exc
    if not os.access(target, os.W_OK | os.X_OK):
        raise BackupError(f"backup target {target} is not writable by uid {os.getuid()}")


def _finish(partial: Path, final: Path) -> None:
    os.replace(partial, final)


def discard(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def request_snapshot(url: str, *, timeout: float) -> str:
    """POST the TSDB snapshot admin API (needs --web.enable-admin-api); the snapshot's name."""
    endpoint = url.rstrip("/") + "/api/v1/admin/tsdb/snapshot"
    request = urllib.request.Request(endpoint, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise BackupError(
            f"Prometheus refused the snapshot ({exc.code}) at {endpoint}: {detail}"
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise BackupError(f"Prometheus unreachable at {endpoint}: {exc}") from exc
    name = body.get("data", {}).get("name") if isinstance(body, dict) else None
    if body.get("status") != "success" or not isinstance(name, str) or "/" in name:
        raise BackupError(f"unexpected snapshot answer from {endpoint}: {body!r}"[:400])
    return name


@dataclass(frozen=True)
class Result:
    path: Path
    size: int
    pruned: list[str]


def backup_prometheus(
    *,
    url: str,
    data_dir: Path,
    target: Path,
    keep: int,
    timeout: float = 120.0,
    clock: Callable[[], float] = time.time,
) -> Result:
    """Snapshot, copy the snapshot to `target/prometheus-<stamp>`, delete the snapshot from
    Prometheus's volume (it would grow with every run), prune."""
    writable_target(target)
    snapshot = data_dir / "snapshots" / request_snapshot(url, timeout=timeout)
    final = target / backup_name("prometheus", clock())
    partial = target / (PARTIAL_PREFIX + final.name)
    try:
        if not snapshot.is_dir():
            raise BackupError(
                f"snapshot {snapshot} not found: is {data_dir} Prometheus's --storage.tsdb.path?"
            )
        size = tree_size(snapshot)
        check_space(target, size)
        try:
            shutil.copytree(snapshot, partial)
            _finish(partial, final)
        except OSError as exc:
            discard(partial)
            raise BackupError(f"cannot write backup to {target}: {exc}") from exc
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    return Result(final, size, prune("prometheus", target, keep))


def backup_grafana(
    *, db: Path, target: Path, keep: int, clock: Callable[[], float] = time.time
) -> Result:
    """A consistent copy of a live grafana.db through SQLite's online backup API (a plain file
    copy can catch a half-applied transaction), checked before it counts as a backup."""
    writable_target(target)
    if not db.is_file():
        raise BackupError(f"Grafana database {db} not found")
    size = db.stat().st_size
    check_space(target, size)
    final = target / backup_name("grafana", clock())
    partial = target / (PARTIAL_PREFIX + final.name)
    try:
        copy_sqlite(db, partial)
        _finish(partial, final)
    except (OSError, sqlite3.Error) as exc:
        discard(partial)
        raise BackupError(f"cannot back up {db} to {target}: {exc}") from exc
    return Result(final, size, prune("grafana", target, keep))


def copy_sqlite(source: Path, dest: Path) -> None:
    """Copy in one step (pages=-1): one read transaction, so the copy is a single consistent
    state even while Grafana writes; a busy writer is waited for up to 60 s."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out, pages=-1)
            check = out.execute("PRAGMA integrity_check").fetchone()
            if check is None or check[0] != "ok":
                raise BackupError(f"copy of {source} failed its integrity check: {check}")
        finally:
            out.close()
    finally:
        src.close()


def restore_prometheus(*, backup: Path, data_dir: Path, force: bool = False) -> None:
    """Copy a backup into Prometheus's (stopped) data directory: the snapshot is a complete
    TSDB directory (blocks; the head was flushed into a block when the snapshot was taken)."""
    if not (backup / "meta.json").exists() and not any(backup.glob("*/meta.json")):
        raise BackupError(f"{backup} is not a Prometheus snapshot (no blocks)")
    data_dir.mkdir(parents=True, exist_ok=True)
    if any(data_dir.iterdir()):
        if not force:
            raise BackupError(
                f"{data_dir} is not empty: stop Prometheus and pass --force to replace its data"
            )
        for child in data_dir.iterdir():
            if child.name != "lost+found":
                discard(child)
    try:
        shutil.copytree(backup, data_dir, dirs_exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot restore into {data_dir}: {exc}") from exc


def restore_grafana(*, backup: Path, db: Path) -> None:
    """Write a backup over grafana.db (Grafana stopped) through the backup API, then check it."""
    if not backup.is_file():
        raise BackupError(f"backup {backup} not found")
    partial = db.with_name(PARTIAL_PREFIX + db.name)
    try:
        copy_sqlite(backup, partial)
        for suffix in ("-journal", "-wal", "-shm"):  # leftovers of the replaced database
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        os.replace(partial, db)
    except (OSError, sqlite3.Error) as exc:
        discard(partial)
        raise BackupError(f"cannot restore {backup} to {db}: {exc}") from exc


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="indexforge-backup", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prom = sub.add_parser("prometheus", help="TSDB snapshot to the target")
    prom.add_argument("--url", required=True, help="Prometheus base URL")
    prom.add_argument("--data-dir", type=Path, required=True, help="Prometheus's TSDB path")
    prom.add_argument("--timeout", type=float, default=120.0, help="snapshot request seconds")
    graf = sub.add_parser("grafana", help="online copy of grafana.db to the target")
    graf.add_argument("--db", type=Path, required=True, help="path of grafana.db")
    for p in (prom, graf):
        p.add_argument("--target", type=Path, required=True, help="backup directory")
        p.add_argument("--keep", type=_positive, required=True, help="backups kept (retention)")
    rprom = sub.add_parser("restore-prometheus", help="backup into a stopped Prometheus's data")
    rprom.add_argument("--backup", type=Path, required=True)
    rprom.add_argument("--data-dir", type=Path, required=True)
    rprom.add_argument("--force", action="store_true", help="replace existing data")
    rgraf = sub.add_parser("restore-grafana", help="backup over a stopped Grafana's grafana.db")
    rgraf.add_argument("--backup", type=Path, required=True)
    rgraf.add_argument("--db", type=Path, required=True)
    red = sub.add_parser("redis", help="RDB snapshot over the network (SYNC) to the target")
    red.add_argument("--host", required=True)
    red.add_argument("--port", type=int, default=6379)
    red.add_argument("--target", type=Path, required=True, help="backup directory")
    red.add_argument("--keep", type=_positive, required=True, help="backups kept (retention)")
    red.add_argument("--timeout", type=float, default=600.0, help="socket timeout, seconds")
    rred = sub.add_parser("restore-redis", help="backup into a stopped Redis's data directory")
    rred.add_argument("--backup", type=Path, required=True)
    rred.add_argument("--data-dir", type=Path, required=True)
    rred.add_argument("--force", action="store_true", help="replace existing data")
    weav = sub.add_parser("weaviate", help="backup through Weaviate's backup API")
    rweav = sub.add_parser("restore-weaviate", help="restore through Weaviate's backup API")
    for p in (weav, rweav):
        p.add_argument("--url", required=True, help="Weaviate base URL")
        p.add_argument("--backend", choices=("filesystem", "s3"), required=True)
        p.add_argument("--deadline", type=float, default=3000.0, help="seconds to wait")
    weav.add_argument("--keep", type=_positive, required=True, help="backups kept (retention)")
    weav.add_argument(
        "--backup-dir", type=Path, help="the filesystem backend's directory (retention)"
    )
    rweav.add_argument("--id", required=True, help="backup id (weaviate-<stamp>)")
    return parser


def _stores(args: argparse.Namespace) -> str:
    """Redis and Weaviate commands (imported here: those modules import this one)."""
    from . import backup as package_module
    from . import backup_redis, backup_weaviate

    # Under `python -m`, this file is __main__ and the stores raise the package module's
    # BackupError, another class than this file's.
    try:
        return _run_store(args, backup_redis, backup_weaviate)
    except package_module.BackupError as exc:
        raise BackupError(str(exc)) from exc


def _run_store(args: argparse.Namespace, backup_redis: Any, backup_weaviate: Any) -> str:
    if args.command == "redis":
        password = os.environ.get(backup_redis.PASSWORD_ENV) or None
        result = backup_redis.backup_redis(
            host=args.host,
            port=args.port,
            password=password,
            target=args.target,
            keep=args.keep,
            timeout=args.timeout,
        )
        return (
            f"wrote {result.path} ({result.size} bytes); pruned: {', '.join(result.pruned) or '-'}"
        )
    if args.command == "restore-redis":
        backup_redis.restore_redis(backup=args.backup, data_dir=args.data_dir, force=args.force)
        return f"restored {args.backup} into {args.data_dir}"
    key_file = os.environ.get(backup_weaviate.API_KEY_FILE_ENV)
    client = backup_weaviate.Weaviate(
        args.url,
        args.backend,
        os.environ.get(backup_weaviate.API_KEY_ENV) or None,
        api_key_file=Path(key_file) if key_file else None,
    )
    if args.command == "weaviate":
        done = backup_weaviate.backup_weaviate(
            client, keep=args.keep, backup_dir=args.backup_dir, deadline_s=args.deadline
        )
        return f"backup {done.backup_id} at {done.path}; pruned: {', '.join(done.pruned) or '-'}"
    backup_weaviate.restore_weaviate(client, backup_id=args.id, deadline_s=args.deadline)
    return f"restored Weaviate backup {args.id}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("redis", "restore-redis", "weaviate", "restore-weaviate"):
            print(_stores(args))
            return 0
        if args.command == "prometheus":
            result = backup_prometheus(
                url=args.url,
                data_dir=args.data_dir,
                target=args.target,
                keep=args.keep,
                timeout=args.timeout,
            )
        elif args.command == "grafana":
            result = backup_grafana(db=args.db, target=args.target, keep=args.keep)
        elif args.command == "restore-prometheus":
            restore_prometheus(backup=args.backup, data_dir=args.data_dir, force=args.force)
            print(f"restored {args.backup} into {args.data_dir}")
            return 0
        else:
            restore_grafana(backup=args.backup, db=args.db)
            print(f"restored {args.backup} to {args.db}")
            return 0
    except BackupError as exc:
        print(f"indexforge-backup: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result.path} ({result.size} bytes); pruned: {', '.join(result.pruned) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

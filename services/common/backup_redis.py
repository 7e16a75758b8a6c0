"""Redis backups as RDB snapshots taken over the network, and their restore.

The backup speaks the replication handshake `redis-cli --rdb` speaks (`REPLCONF rdb-only 1`,
`SYNC`): Redis forks, writes a point-in-time RDB and streams it, so the job needs only the
Redis Service and password, not Redis's ReadWriteOnce volume (no node pinning, no copy of a
file Redis may be rewriting). The snapshot is written under a temporary name, checked (RDB
magic, announced length, EOF opcode, CRC-64 checksum) and only then renamed to
`redis-<stamp>.rdb`; a restore checks the same before it replaces anything.

The restore writes a backup into a stopped Redis's data directory in both forms Redis loads
at start: `dump.rdb` (appendonly no) and an AOF directory whose base file is the RDB
(appendonly yes; Redis 7's multi-part AOF accepts an RDB base). Redis with AOF on ignores
a lone dump.rdb, so writing only that would start empty.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from .backup import (
    PARTIAL_PREFIX,
    BackupError,
    Result,
    backup_name,
    discard,
    prune,
    writable_target,
)

PASSWORD_ENV = "REDISCLI_AUTH"  # the variable redis-cli reads, already set in Redis's pods
AOF_DIR = "appendonlydir"
AOF_BASE = "appendonly.aof.1.base.rdb"
AOF_MANIFEST = "appendonly.aof.manifest"
_CHUNK = 1 << 20


def _command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _fill(self) -> None:
        chunk = self.sock.recv(_CHUNK)
        if not chunk:
            raise BackupError("Redis closed the connection during the transfer")
        self.buffer += chunk

    def copy(self, size: int, out: Path) -> None:
        left = size
        with out.open("wb") as handle:
            while left > 0:
                if not self.buffer:
                    self._fill()
                piece, self.buffer = self.buffer[:left], self.buffer[left:]
                handle.write(piece)
                left -= len(piece)
            handle.flush()
            os.fsync(handle.fileno())


def _simple(reader: _Reader, what: str) -> None:
    reply = reader.line()
    if not reply.startswith(b"+"):
        raise BackupError(f"Redis refused {what}: {reply.decode(errors='replace')[:200]}")


def fetch_rdb(
    host: str, port: int, out: Path, *, password: str | None, timeout: float = 600.0
) -> int:
    """Stream a fresh RDB snapshot of the server into `out`; its size."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise BackupError(f"Redis unreachable at {host}:{port}: {exc}") from exc
    with sock:
        reader = _Reader(sock)
        try:
            if password:
                sock.sendall(_command("AUTH", password))
                _simple(reader, "AUTH")
            # Send only the snapshot, not the replication stream after it (Redis >= 7.0).
            sock.sendall(_command("REPLCONF", "rdb-only", "1"))
            _simple(reader, "REPLCONF rdb-only")
            sock.sendall(_command("SYNC"))
            header = reader.line().lstrip(b"\n")  # newlines are keep-alives while Redis forks
            if not header.startswith(b"$") or header.startswith(b"$EOF:"):
                raise BackupError(f"unexpected SYNC answer: {header.decode(errors='replace')}")
            size = int(header[1:])
            reader.copy(size, out)
        except OSError as exc:
            raise BackupError(f"transfer from Redis {host}:{port} failed: {exc}") from exc
    check_rdb(out, size)
    return size


# CRC-64/Jones, reflected: the checksum Redis appends to every RDB (redis/src/crc64.c).
_CRC64_POLY = 0x95AC9329AC4BC9B5


def _crc64_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC64_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's CRC-64 of `data`, continuing from `crc` (pure Python: ~10 MB/s, no extra
    dependency in the API image the backup jobs run from)."""
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def check_rdb(path: Path, size: int) -> None:
    """An RDB file starts with `REDIS<4-digit version>` and ends with the EOF opcode (0xFF)
    and the little-endian CRC-64 of everything before it (0 when Redis runs with
    `rdbchecksum no`). Without the checksum a cut or damaged file whose 9th-last byte happens
    to be 0xFF passes: a restore would then replace good data with a file Redis refuses."""
    if path.stat().st_size != size or size < 18:
        raise BackupError(f"{path} is not a complete RDB snapshot")
    crc, last = 0, -1
    with path.open("rb") as handle:
        magic = handle.read(9)
        handle.seek(0)
        left = size - 8
        while left:
            chunk = handle.read(min(_CHUNK, left))
            if not chunk:
                break
            crc = crc64(chunk, crc)
            last = chunk[-1]
            left -= len(chunk)
        stored = int.from_bytes(handle.read(8), "little")
    if left or not magic.startswith(b"REDIS") or last != 0xFF:
        raise BackupError(f"{path} is not a complete RDB snapshot")
    if stored not in (0, crc):
        raise BackupError(f"{path} is damaged: RDB checksum {stored:016x}, content {crc:016x}")


def backup_redis(
    *,
    host: str,
    port: int,
    password: str | None,
    target: Path,
    keep: int,
    timeout: float = 600.0,
    clock: Callable[[], float] = time.time,
) -> Result:
    writable_target(target)
    final = target / backup_name("redis", clock())
    partial = target / (PARTIAL_PREFIX + final.name)
    try:
        size = fetch_rdb(host, port, partial, password=password, timeout=timeout)
        os.replace(partial, final)
    except BackupError:
        discard(partial)
        raise
    except OSError as exc:
        discard(partial)
        raise BackupError(f"cannot write backup to {target}: {exc}") from exc
    return Result(final, size, prune("redis", target, keep))


def restore_redis(*, backup: Path, data_dir: Path, force: bool = False) -> None:
    """Write `backup` into a stopped Redis's `data_dir` as dump.rdb and as the AOF base."""
    if not backup.is_file():
        raise BackupError(f"backup {backup} not found")
    check_rdb(backup, backup.stat().st_size)
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = [p for p in (data_dir / "dump.rdb", data_dir / AOF_DIR) if p.exists()]
    if existing and not force:
        raise BackupError(
            f"{data_dir} holds Redis data ({', '.join(p.name for p in existing)}): "
            "stop Redis and pass --force to replace it"
        )
    staging = data_dir / f"{PARTIAL_PREFIX}restore"
    discard(staging)
    try:
        (staging / AOF_DIR).mkdir(parents=True)
        data = backup.read_bytes()
        (staging / "dump.rdb").write_bytes(data)
        (staging / AOF_DIR / AOF_BASE).write_bytes(data)
        (staging / AOF_DIR / AOF_MANIFEST).write_text(f"file {AOF_BASE} seq 1 type b\n")
        for path in existing:
            discard(path)
        os.replace(staging / "dump.rdb", data_dir / "dump.rdb")
        os.replace(staging / AOF_DIR, data_dir / AOF_DIR)
    except OSError as exc:
        raise BackupError(f"cannot restore {backup} into {data_dir}: {exc}") from exc
    finally:
        discard(staging)

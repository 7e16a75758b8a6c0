"""The RDB check the Redis backup and restore rely on: magic, EOF opcode, CRC-64 checksum."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexforge_services.common.backup import BackupError
from indexforge_services.common.backup_redis import check_rdb, crc64


def _rdb(body: bytes, *, checksum: int | None = None) -> bytes:
    content = b"REDIS0011" + body + b"\xff"
    crc = crc64(content) if checksum is None else checksum
    return content + crc.to_bytes(8, "little")


def test_crc64_is_redis_jones_crc() -> None:
    # The check value redis/src/crc64.c tests itself with.
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert crc64(b"56789", crc64(b"1234")) == crc64(b"123456789")  # chunked = whole


def test_an_intact_snapshot_passes_and_a_disabled_checksum_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ok.rdb"
    for content in (_rdb(b"\xfa\x09redis-ver" * 1000), _rdb(b"body", checksum=0)):
        path.write_bytes(content)
        check_rdb(path, len(content))


@pytest.mark.parametrize(
    ("what", "damage", "message"),
    [
        # The 9th-last byte of the cut file is 0xFF: the EOF check alone let this through.
        ("cut-at-ff", lambda b: b[:-20], "damaged"),
        ("flipped-bit", lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:], "damaged"),
        ("no-eof", lambda b: b[:-9] + b"\x00" + b[-8:], "not a complete"),
        ("not-rdb", lambda b: b"HELLO" + b[5:], "not a complete"),
        ("tiny", lambda b: b[:10], "not a complete"),
    ],
)
def test_damaged_snapshots_are_refused(tmp_path: Path, what: str, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    good = _rdb(b"x" * 40 + b"\xff" + b"y" * 19)
    assert good[-29] == 0xFF  # cutting 20 bytes leaves it where the EOF opcode belongs
    bad = damage(good)
    path = tmp_path / f"{what}.rdb"
    path.write_bytes(bad)
    with pytest.raises(BackupError, match=message):
        check_rdb(path, len(bad))
    intact = tmp_path / "good.rdb"
    intact.write_bytes(good)
    with pytest.raises(BackupError, match="not a complete"):
        check_rdb(intact, len(good) + 1)  # fewer bytes than SYNC announced

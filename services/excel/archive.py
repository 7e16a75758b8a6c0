"""Checks on an upload's bytes before any XML is parsed: what is it, and is it safe to open?

- Content is identified by signature, never by file name: an `.xlsx` is a ZIP archive holding
  `[Content_Types].xml` and an `xl/` part; an OLE2 compound file is either an encrypted
  workbook (it has an `EncryptedPackage` stream) or a legacy `.xls`.
- Zip bombs are refused from the central directory alone: the declared uncompressed total,
  the per-member compression ratio and the member count are bounded. Python's zipfile stops
  inflating a member at its declared size (and fails its CRC), so a lying header cannot make
  the later read bigger than what was checked here.

Pure functions: the API runs the same checks synchronously on uploads it forwards.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from enum import Enum

from .errors import ExcelRejected

ZIP_SIGNATURE = b"PK\x03\x04"
OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
# Members smaller than this may compress as well as they like (tiny XML parts, shared styles).
RATIO_EXEMPT_BYTES = 1024 * 1024


class Kind(Enum):
    XLSX = "xlsx"
    ENCRYPTED = "encrypted"
    LEGACY_XLS = "xls"
    ZIP = "zip"  # a ZIP that is not a workbook (docx, plain archive)
    EMPTY = "empty"
    OTHER = "other"


@dataclass(frozen=True)
class ArchiveLimits:
    max_uncompressed_bytes: int = 256 * 1024 * 1024
    max_compression_ratio: float = 200.0
    max_entries: int = 2000


def sniff(data: bytes) -> Kind:
    """What the bytes are, from their signature (first bytes) only."""
    if not data:
        return Kind.EMPTY
    if data.startswith(ZIP_SIGNATURE):
        return Kind.ZIP
    if data.startswith(OLE2_SIGNATURE):
        return Kind.ENCRYPTED if ENCRYPTED_STREAM in data else Kind.LEGACY_XLS
    return Kind.OTHER


def check_archive(data: bytes, limits: ArchiveLimits) -> None:
    """Raise `ExcelRejected` unless `data` is a ZIP-packaged workbook within the limits."""
    kind = sniff(data)
    if kind is Kind.EMPTY:
        raise ExcelRejected(400, "empty", "the file is empty (0 bytes)")
    if kind is Kind.ENCRYPTED:
        raise ExcelRejected(
            415, "encrypted", "the workbook is password-protected (encrypted); save it without"
        )
    if kind is Kind.LEGACY_XLS:
        raise ExcelRejected(
            415, "legacy_xls", "legacy .xls (BIFF) workbooks are not supported; save as .xlsx"
        )
    if kind is Kind.OTHER:
        raise ExcelRejected(
            415, "not_xlsx", "the content is not an .xlsx workbook (no ZIP signature)"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ExcelRejected(
            400, "corrupt", f"the .xlsx archive is corrupt or truncated ({exc})"
        ) from exc
    _check_members(members, limits)


def _check_members(members: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if len(members) > limits.max_entries:
        raise ExcelRejected(
            422,
            "zip_bomb",
            f"the archive has {len(members)} members; the limit is {limits.max_entries}",
        )
    names = {m.filename for m in members}
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise ExcelRejected(
            415, "not_xlsx", "the ZIP archive is not an .xlsx workbook (no xl/ workbook part)"
        )
    total = 0
    for member in members:
        total += member.file_size
        if member.file_size > RATIO_EXEMPT_BYTES:
            ratio = member.file_size / max(1, member.compress_size)
            if ratio > limits.max_compression_ratio:
                raise ExcelRejected(
                    422,
                    "zip_bomb",
                    f"member {member.filename!r} expands {ratio:.0f}x "
                    f"(limit {limits.max_compression_ratio:.0f}x): refusing a likely zip bomb",
                )
    if total > limits.max_uncompressed_bytes:
        raise ExcelRejected(
            422,
            "zip_bomb",
            f"the archive declares {total} uncompressed bytes; "
            f"the limit is {limits.max_uncompressed_bytes}",
        )

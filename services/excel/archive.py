"""Checks on an upload's bytes before any XML is parsed: what is it, and is it safe to open?

- Content is identified by signature, never by file name: an `.xlsx` is a ZIP archive holding
  `[Content_Types].xml` and an `xl/` part; an OLE2 compound file is either an encrypted
  workbook (it has an `EncryptedPackage` stream) or a legacy `.xls`.
- Zip bombs are refused from the central directory alone: the declared uncompressed total,
  the compression ratio (of each big member, and of the archive as a whole, so that many
  small members cannot add up to one bomb) and the member count are bounded. Python's zipfile stops
  inflating a member at its declared size (and fails its CRC), so a lying header cannot make
  the later read bigger than what was checked here.

Pure functions over bytes or a seekable binary file: the API runs the same checks on the
uploads it spooled to disk before forwarding them.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from enum import Enum
from typing import BinaryIO

from .errors import ExcelRejected

ZIP_SIGNATURE = b"PK\x03\x04"
OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
# Members smaller than this may compress as well as they like (tiny XML parts, shared styles);
# so may a whole archive that unpacks to less.
RATIO_EXEMPT_BYTES = 1024 * 1024
# Files are scanned for the OLE2 encryption marker in blocks of this size.
SCAN_BLOCK_BYTES = 1024 * 1024
# A sheet's <dimension ref="A1:XFD9"/> comes before its data; this much of it is enough.
DIMENSION_PEEK_BYTES = 4096
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="[A-Z]+\d+:([A-Z]+)(\d+)"')

Source = bytes | BinaryIO  # the upload in memory, or spooled to a seekable file


def _stream(source: Source) -> BinaryIO:
    """A binary stream over the source, at its start."""
    if isinstance(source, bytes):
        return io.BytesIO(source)
    source.seek(0)
    return source


def _contains(source: Source, marker: bytes) -> bool:
    if isinstance(source, bytes):
        return marker in source
    stream = _stream(source)
    tail = b""
    while block := stream.read(SCAN_BLOCK_BYTES):
        if marker in tail + block[: len(marker)] or marker in block:
            return True
        tail = block[-len(marker) :]
    return False


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


def sniff(data: Source) -> Kind:
    """What the bytes are, from their signature (first bytes) only."""
    head = data[:8] if isinstance(data, bytes) else _stream(data).read(8)
    if not head:
        return Kind.EMPTY
    if head.startswith(ZIP_SIGNATURE):
        return Kind.ZIP
    if head.startswith(OLE2_SIGNATURE):
        return Kind.ENCRYPTED if _contains(data, ENCRYPTED_STREAM) else Kind.LEGACY_XLS
    return Kind.OTHER


def check_archive(data: Source, limits: ArchiveLimits) -> None:
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
        with zipfile.ZipFile(_stream(data)) as archive:
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
    total = packed = 0
    for member in members:
        total += member.file_size
        packed += member.compress_size
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
    ratio = total / max(1, packed)
    if total > RATIO_EXEMPT_BYTES and ratio > limits.max_compression_ratio:
        raise ExcelRejected(
            422,
            "zip_bomb",
            f"the archive expands {ratio:.0f}x over its {len(members)} members "
            f"(limit {limits.max_compression_ratio:.0f}x): refusing a likely zip bomb",
        )


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + (ch - 64)
    return number


def declared_sizes(data: Source) -> list[tuple[str, int, int]]:
    """(sheet part, columns, rows) each worksheet declares in its <dimension>, when it does.

    Only the first bytes of each sheet are inflated. The declaration may be absent or wrong,
    so this is a fast early "no" (a 10k-column sheet is refused without parsing it), never a
    guarantee: the streaming reader enforces the limits on the actual rows.
    """
    out: list[tuple[str, int, int]] = []
    with zipfile.ZipFile(_stream(data)) as archive:
        for member in archive.infolist():
            name = member.filename
            if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                continue
            with archive.open(member) as stream:
                head = stream.read(DIMENSION_PEEK_BYTES)
            found = _DIMENSION.search(head)
            if found:
                out.append((name, _column_number(found.group(1)), int(found.group(2))))
    return out


def check_declared_columns(data: Source, *, max_columns: int) -> None:
    """Refuse a checked archive whose sheets declare more columns than allowed.

    Rows are not checked this way: formatted but empty rows inflate the declared height,
    and the streaming reader counts the real data rows anyway.
    """
    try:
        sizes = declared_sizes(data)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise ExcelRejected(400, "corrupt", f"the .xlsx archive is corrupt ({exc})") from exc
    for name, columns, _rows in sizes:
        if columns > max_columns:
            sheet = name.rsplit("/", 1)[-1]
            raise ExcelRejected(
                422,
                "too_many_columns",
                f"{sheet} declares {columns} columns; the limit is {max_columns}",
            )

"""Turn what a client sent into records, or refuse it with a 4xx before a job exists.

Everything that can be decided from the file at hand is decided here, so bad input never
becomes a job: the type comes from the content's signature and must agree with the file name
(an `.xlsx` renamed `.csv` is refused, not guessed), text must be UTF-8, CSV limits and the
output budget are checked while reading (`readers.py`). Workbooks get the archive checks here
(corrupt, zip bomb, encrypted) and are read later by the Excel processor inside the job.

The file is normally the upload spooled to disk (`spool.py`); bytes are accepted too. All of
this is CPU-bound: the route runs it in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO, Literal

from ..common.tabular import Record
from ..excel.archive import ArchiveLimits, Kind, check_archive, check_declared_columns, sniff
from ..excel.errors import ExcelRejected
from . import readers
from .chunking import chunk_text
from .delimiters import DEFAULT as DEFAULT_DELIMITER
from .delimiters import detect_delimiter
from .readers import budget_for, read_csv_file, read_text_file
from .rejection import UploadRejected
from .settings import ApiSettings

__all__ = [
    "Prepared",
    "UploadRejected",
    "chunk_text",
    "csv_records",
    "prepare_file",
    "prepare_upload",
    "text_records",
]

DocKind = Literal["text", "csv", "xlsx"]
EXTENSIONS: dict[str, DocKind] = {".txt": "text", ".csv": "csv", ".xlsx": "xlsx"}


@dataclass
class Prepared:
    """A checked upload: records ready to write, or a workbook file for the Excel processor.

    The workbook file (the spooled upload) belongs to the Prepared from here on: the job
    closes it when it ends, which frees its disk space.
    """

    kind: DocKind
    source: str
    records: list[Record]
    workbook: BinaryIO | None = None
    digest: str = ""  # with kind and source, the document's id: what was uploaded, as read
    size: int = 0  # bytes uploaded

    def close(self) -> None:
        if self.workbook is not None:
            self.workbook.close()
            self.workbook = None


def safe_name(filename: str | None) -> str:
    """The base name only (clients send paths), printable, bounded."""
    name = PurePath((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_records(text: str, settings: ApiSettings) -> list[Record]:
    """Records of a text document sent as JSON."""
    return readers.text_records([text], settings, budget_for(len(text), settings))


def csv_records(text: str, settings: ApiSettings) -> list[Record]:
    """Records of a CSV held as a string (benchmarks build their corpora this way)."""
    return readers.csv_records(
        io.StringIO(text, newline=""),
        settings,
        delimiter=detect_delimiter(text),
        budget=budget_for(len(text), settings),
    )


def prepare_upload(
    filename: str | None, data: bytes, settings: ApiSettings, *, delimiter: str | None = None
) -> Prepared:
    """`prepare_file` for an upload held in memory."""
    return prepare_file(
        filename,
        io.BytesIO(data),
        size=len(data),
        digest=sha256(data),
        settings=settings,
        delimiter=delimiter,
    )


def prepare_file(
    filename: str | None,
    file: BinaryIO,
    *,
    size: int,
    digest: str,
    settings: ApiSettings,
    delimiter: str | None = None,
) -> Prepared:
    """Check an uploaded file and read it if it is text; raises UploadRejected.

    A workbook's file is kept open in the result (`Prepared.workbook`); the caller closes
    the file in every other case.
    """
    name = safe_name(filename)
    if size > settings.max_upload_bytes:
        raise UploadRejected(
            413, f"the file has {size} bytes; the limit is {settings.max_upload_bytes}"
        )
    kind = EXTENSIONS.get(PurePath(name).suffix.lower())
    if kind is None:
        raise UploadRejected(
            415, f"unsupported file type {name!r}: upload a .txt, .csv or .xlsx file"
        )
    content = sniff(file)
    if content is Kind.EMPTY:
        raise UploadRejected(400, "the file is empty (0 bytes)")
    if kind == "xlsx":
        try:
            check_archive(file, ArchiveLimits())
            check_declared_columns(file, max_columns=settings.max_columns)
        except ExcelRejected as exc:
            raise UploadRejected(exc.status, exc.message, reason=exc.reason) from exc
        file.seek(0)
        return Prepared(kind, name, [], workbook=file, digest=digest, size=size)
    if content in (Kind.ZIP, Kind.ENCRYPTED, Kind.LEGACY_XLS):
        raise UploadRejected(
            415,
            f"the file is named {name!r} but its content is a binary office/ZIP file, "
            "not text: send workbooks as .xlsx",
        )
    budget = budget_for(size, settings)
    if kind == "text":
        records = read_text_file(file, settings, budget)
        return Prepared(kind, name, records, digest=digest, size=size)
    records, used = read_csv_file(file, settings, budget, delimiter=delimiter)
    if used != DEFAULT_DELIMITER:
        # Read another way, the same bytes are other records: another document.
        digest = sha256(f"{digest}:delimiter={used}".encode())
    return Prepared(kind, name, records, digest=digest, size=size)

"""Turn what a client sent into records, or refuse it with a 4xx before a job exists.

Everything that can be decided from the bytes at hand is decided here, synchronously, so bad
input never becomes a job: the type comes from the content's signature and must agree with
the file name (an `.xlsx` renamed `.csv` is refused, not guessed), text must be UTF-8,
CSV limits are checked while reading. Workbooks get the archive checks here (corrupt, zip
bomb, encrypted) and are read later by the Excel processor inside the job.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from ..common.tabular import Record, TableReader
from ..excel.archive import ArchiveLimits, Kind, check_archive, check_declared_columns, sniff
from ..excel.errors import ExcelRejected
from .settings import ApiSettings

DocKind = Literal["text", "csv", "xlsx"]
EXTENSIONS: dict[str, DocKind] = {".txt": "text", ".csv": "csv", ".xlsx": "xlsx"}
_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class UploadRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Prepared:
    """A checked upload: records ready to write, or workbook bytes for the Excel processor."""

    kind: DocKind
    source: str
    records: list[Record]
    workbook: bytes | None = None
    digest: str = ""  # SHA-256 of what was uploaded: with kind and source, the document's id


def safe_name(filename: str | None) -> str:
    """The base name only (clients send paths), printable, bounded."""
    name = PurePath((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255]


def chunk_text(text: str, *, size: int) -> list[str]:
    """Split at paragraph, then sentence boundaries, into pieces of at most `size` chars."""
    pieces: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        current = ""
        for sentence in _SENTENCE_END.split(paragraph):
            while len(sentence) > size:  # one very long sentence: hard cut
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(sentence[:size])
                sentence = sentence[size:]
            if current and len(current) + 1 + len(sentence) > size:
                pieces.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}" if current else sentence
        if current:
            pieces.append(current)
    return pieces


def text_records(text: str, settings: ApiSettings) -> list[Record]:
    chunks = chunk_text(text, size=settings.chunk_chars)
    if not chunks:
        raise UploadRejected(422, "the document has no text (only whitespace)")
    if len(chunks) > settings.max_rows:
        raise UploadRejected(
            422, f"the document splits into {len(chunks)} chunks; the limit is {settings.max_rows}"
        )
    return [Record(sheet="", row=i, fields={}, text=chunk) for i, chunk in enumerate(chunks, 1)]


def decode_text(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadRejected(
            422, f"the {what} file is not valid UTF-8 (invalid byte at offset {exc.start})"
        ) from exc
    if "\x00" in text:
        raise UploadRejected(415, f"the {what} file contains NUL bytes: binary content")
    return text


def csv_records(text: str, settings: ApiSettings) -> list[Record]:
    sample = text[: 64 * 1024]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = TableReader("", max_text_chars=settings.max_text_chars)
    out: list[Record] = []
    rows = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    try:
        for number, values in enumerate(rows, start=1):
            if len(values) > settings.max_columns:
                raise UploadRejected(
                    422,
                    f"CSV line {number} has {len(values)} columns; "
                    f"the limit is {settings.max_columns}",
                )
            for value in values:
                if len(value) > settings.max_cell_chars:
                    raise UploadRejected(
                        422,
                        f"CSV line {number}: a field has {len(value)} characters; "
                        f"the limit is {settings.max_cell_chars}",
                    )
            out.extend(reader.add(number, values))
            if len(out) > settings.max_rows:
                raise UploadRejected(422, f"the CSV has more than {settings.max_rows} data rows")
    except csv.Error as exc:
        raise UploadRejected(422, f"malformed CSV: {exc}") from exc
    out.extend(reader.finish())
    if not out:
        raise UploadRejected(422, "the CSV has no data rows")
    return out


def prepare_upload(filename: str | None, data: bytes, settings: ApiSettings) -> Prepared:
    """Check an uploaded file and read it if it is text; raises UploadRejected."""
    name = safe_name(filename)
    if len(data) > settings.max_upload_bytes:
        raise UploadRejected(
            413, f"the file has {len(data)} bytes; the limit is {settings.max_upload_bytes}"
        )
    kind = EXTENSIONS.get(PurePath(name).suffix.lower())
    if kind is None:
        raise UploadRejected(
            415, f"unsupported file type {name!r}: upload a .txt, .csv or .xlsx file"
        )
    content = sniff(data)
    if content is Kind.EMPTY:
        raise UploadRejected(400, "the file is empty (0 bytes)")
    binary = content in (Kind.ZIP, Kind.ENCRYPTED, Kind.LEGACY_XLS)
    if kind == "xlsx":
        try:
            check_archive(data, ArchiveLimits())
            check_declared_columns(data, max_columns=settings.max_columns)
        except ExcelRejected as exc:
            raise UploadRejected(exc.status, exc.message) from exc
        return Prepared(kind, name, [], workbook=data, digest=sha256(data))
    if binary:
        raise UploadRejected(
            415,
            f"the file is named {name!r} but its content is a binary office/ZIP file, "
            "not text: send workbooks as .xlsx",
        )
    text = decode_text(data, kind)
    records = text_records(text, settings) if kind == "text" else csv_records(text, settings)
    return Prepared(kind, name, records, digest=sha256(data))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

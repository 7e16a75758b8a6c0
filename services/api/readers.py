"""Uploaded text and CSV read into records from a file, in one bounded pass.

The file is decoded as it is read (UTF-8, a BOM allowed) and never held whole: text goes
through the chunker block by block, CSV through the csv module line by line. Every limit
(rows, columns, field size, line length, the output budget) is checked as records come out,
so a file that breaks one stops being read there. CPU-bound: callers run it in a worker
thread, never on the event loop.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from ..common import budget as budget_
from ..common.budget import OutputBudget, OutputBudgetExceeded
from ..common.tabular import Record, TableReader
from .chunking import chunk_blocks
from .delimiters import SAMPLE_CHARS, detect_delimiter
from .rejection import UploadRejected
from .settings import ApiSettings

BLOCK_CHARS = 256 * 1024
# A physical CSV line longer than this is refused rather than read into one string.
MAX_LINE_CHARS = 8 * 1024 * 1024


def budget_for(input_bytes: int, settings: ApiSettings) -> OutputBudget:
    return OutputBudget.for_input(
        input_bytes, max_chars=settings.max_output_chars, max_ratio=settings.max_output_ratio
    )


def over_budget(exc: OutputBudgetExceeded) -> UploadRejected:
    return UploadRejected(422, exc.message, reason=budget_.REASON)


def _invalid_utf8_offset(file: BinaryIO) -> int:
    """Byte offset of the first invalid UTF-8 sequence (only called once decoding failed)."""
    file.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    while True:
        block = file.read(1024 * 1024)
        held = len(decoder.getstate()[0])  # bytes of a sequence cut by the previous block
        try:
            decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            return offset - held + exc.start
        if not block:
            return offset
        offset += len(block)


@contextmanager
def decoded(file: BinaryIO, what: str) -> Iterator[io.TextIOWrapper]:
    """The file as text; invalid UTF-8 becomes a 422 naming the byte offset."""
    file.seek(0)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="strict", newline="")
    try:
        yield text
    except UnicodeDecodeError as exc:
        offset = _invalid_utf8_offset(file)
        raise UploadRejected(
            422, f"the {what} file is not valid UTF-8 (invalid byte at offset {offset})"
        ) from exc
    finally:
        text.detach()  # the caller owns (and closes) the file


def _no_nul(text: str, what: str) -> str:
    if "\x00" in text:
        raise UploadRejected(415, f"the {what} file contains NUL bytes: binary content")
    return text


def text_records(
    blocks: Iterable[str], settings: ApiSettings, budget: OutputBudget
) -> list[Record]:
    """Chunks of a text document as records, stopping at the first limit broken."""
    out: list[Record] = []
    try:
        for number, chunk in enumerate(chunk_blocks(blocks, size=settings.chunk_chars), 1):
            if number > settings.max_rows:
                raise UploadRejected(
                    422,
                    f"the document splits into more than {settings.max_rows} chunks; "
                    f"the limit is {settings.max_rows}",
                )
            record = Record(sheet="", row=number, fields={}, text=chunk)
            budget.charge(record)
            out.append(record)
    except OutputBudgetExceeded as exc:
        raise over_budget(exc) from exc
    if not out:
        raise UploadRejected(422, "the document has no text (only whitespace)")
    return out


def read_text_file(file: BinaryIO, settings: ApiSettings, budget: OutputBudget) -> list[Record]:
    with decoded(file, "text") as text:
        blocks = (_no_nul(block, "text") for block in iter(lambda: text.read(BLOCK_CHARS), ""))
        return text_records(blocks, settings, budget)


def _lines(text: io.TextIOWrapper) -> Iterator[str]:
    """Physical lines, NUL-free and bounded in length."""
    number = 0
    while line := text.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise UploadRejected(
                422, f"CSV line {number} is longer than {MAX_LINE_CHARS} characters"
            )
        yield _no_nul(line, "csv")


def csv_records(
    lines: Iterable[str], settings: ApiSettings, *, delimiter: str, budget: OutputBudget
) -> list[Record]:
    """Rows of a CSV as records, stopping at the first limit broken."""
    reader = TableReader("", max_text_chars=settings.max_text_chars)
    out: list[Record] = []
    rows = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
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
            for record in reader.add(number, values):
                budget.charge(record)
                out.append(record)
            if len(out) > settings.max_rows:
                raise UploadRejected(422, f"the CSV has more than {settings.max_rows} data rows")
        for record in reader.finish():
            budget.charge(record)
            out.append(record)
    except csv.Error as exc:
        raise UploadRejected(422, f"malformed CSV: {exc}") from exc
    except OutputBudgetExceeded as exc:
        raise over_budget(exc) from exc
    if not out:
        raise UploadRejected(422, "the CSV has no data rows")
    return out


def read_csv_file(
    file: BinaryIO, settings: ApiSettings, budget: OutputBudget, *, delimiter: str | None
) -> tuple[list[Record], str]:
    """The CSV's records and the delimiter they were read with."""
    with decoded(file, "csv") as text:
        if delimiter is None:
            delimiter = detect_delimiter(_no_nul(text.read(SAMPLE_CHARS), "csv"))
            text.seek(0)
        return csv_records(_lines(text), settings, delimiter=delimiter, budget=budget), delimiter

"""Read a checked `.xlsx` into records with openpyxl's read-only (streaming) reader.

`data_only=True` returns the value Excel cached for a formula cell; nothing is ever
evaluated. `keep_links=False` ignores external workbook links, `keep_vba=False` drops macros.
Limits are enforced while streaming, so a sheet that breaks one stops the read at that row
instead of after the whole file was turned into records; that includes the output budget
(`common/budget.py`), which stops a small file that would expand into huge records.
"""

from __future__ import annotations

import io
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from openpyxl import load_workbook

from ..common import budget as budget_
from ..common.budget import OutputBudget, OutputBudgetExceeded
from ..common.tabular import Record, TableReader, is_blank
from .archive import ArchiveLimits, check_archive
from .errors import ExcelRejected


@dataclass(frozen=True)
class ReadLimits:
    max_rows: int = 100_000
    max_columns: int = 1024
    max_sheets: int = 32
    max_cell_chars: int = 16_384
    max_text_chars: int = 2000
    max_output_chars: int = budget_.DEFAULT_MAX_CHARS
    max_output_ratio: float = budget_.DEFAULT_MAX_RATIO
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)


@dataclass
class SheetSummary:
    name: str
    header: list[str] | None
    header_row: int | None
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "header": self.header,
            "header_row": self.header_row,
            "rows": self.rows,
        }


@dataclass
class ParsedWorkbook:
    sheets: list[SheetSummary]
    records: list[Record]
    seconds: float
    output_chars: int = 0  # what the budget counted

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheets": [s.as_dict() for s in self.sheets],
            "row_count": len(self.records),
            "records": [r.as_dict() for r in self.records],
            "seconds": self.seconds,
        }


def parse_workbook(data: bytes, limits: ReadLimits) -> ParsedWorkbook:
    """Check the archive, then stream every worksheet into records (raises ExcelRejected)."""
    check_archive(data, limits.archive)
    budget = OutputBudget.for_input(
        len(data), max_chars=limits.max_output_chars, max_ratio=limits.max_output_ratio
    )
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # openpyxl warns about unsupported extensions / data validation; not our business.
            warnings.simplefilter("ignore")
            workbook = load_workbook(
                io.BytesIO(data),
                read_only=True,
                data_only=True,
                keep_links=False,
                keep_vba=False,
            )
    except ExcelRejected:
        raise
    except Exception as exc:  # openpyxl raises many types for a malformed package
        raise ExcelRejected(
            400, "corrupt", f"the workbook could not be read ({type(exc).__name__})"
        ) from exc
    try:
        sheets = workbook.worksheets
        if len(sheets) > limits.max_sheets:
            raise ExcelRejected(
                422,
                "too_many_sheets",
                f"the workbook has {len(sheets)} sheets; the limit is {limits.max_sheets}",
            )
        summaries: list[SheetSummary] = []
        records: list[Record] = []
        for sheet in sheets:
            summaries.append(_read_sheet(sheet, limits, records, budget))
    except OutputBudgetExceeded as exc:
        raise ExcelRejected(422, budget_.REASON, exc.message) from exc
    except ExcelRejected:
        raise
    except Exception as exc:
        raise ExcelRejected(
            400, "corrupt", f"the workbook could not be read ({type(exc).__name__})"
        ) from exc
    finally:
        workbook.close()
    return ParsedWorkbook(summaries, records, time.perf_counter() - started, budget.spent)


def _read_sheet(
    sheet: Any, limits: ReadLimits, out: list[Record], budget: OutputBudget
) -> SheetSummary:
    title = str(sheet.title)
    declared = sheet.max_column  # from the <dimension> element; may be absent or wrong
    if isinstance(declared, int) and declared > limits.max_columns:
        raise _too_wide(title, declared, limits)
    reader = TableReader(title, max_text_chars=limits.max_text_chars)
    before = len(out)
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        if not values:
            continue
        if len(values) > limits.max_columns and not all(
            is_blank(v) for v in values[limits.max_columns :]
        ):
            raise _too_wide(title, len(values), limits)
        for value in values:
            if isinstance(value, str) and len(value) > limits.max_cell_chars:
                raise ExcelRejected(
                    422,
                    "cell_too_long",
                    f"sheet {title!r} row {number}: a cell has {len(value)} characters; "
                    f"the limit is {limits.max_cell_chars}",
                )
        for record in reader.add(number, values):
            budget.charge(record)
            out.append(record)
        if len(out) > limits.max_rows:
            raise _too_many_rows(limits)
    for record in reader.finish():
        budget.charge(record)
        out.append(record)
    if len(out) > limits.max_rows:
        raise _too_many_rows(limits)
    return SheetSummary(title, reader.header, reader.header_row, len(out) - before)


def _too_wide(title: str, columns: int, limits: ReadLimits) -> ExcelRejected:
    return ExcelRejected(
        422,
        "too_many_columns",
        f"sheet {title!r} has {columns} columns; the limit is {limits.max_columns}",
    )


def _too_many_rows(limits: ReadLimits) -> ExcelRejected:
    return ExcelRejected(
        422, "too_many_rows", f"the workbook has more than {limits.max_rows} data rows"
    )

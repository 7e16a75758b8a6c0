"""Rows of a table (an Excel sheet, a CSV file) turned into records that can be searched.

Shared by the Excel processor and the API's CSV path, so a row reads the same whichever way
it arrived: `fields` maps column name -> JSON-safe value, `text` is the line that gets
embedded ("Name: Fridge; Description: keeps drinks cold"). Header detection looks at the
first few non-empty rows: the first reasonably wide one is the header if it is all text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# How many non-empty rows header detection may look at (title rows above the header).
HEADER_SCAN_ROWS = 10
JsonScalar = str | int | float | bool | None


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: the spreadsheet name of a column without a title."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def json_scalar(value: Any) -> JsonScalar:
    """A cell value as something JSON and msgpack both keep as is."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def trim(values: Sequence[Any]) -> Sequence[Any]:
    """Drop trailing empty cells (formatting often extends a row far past its data)."""
    end = len(values)
    while end and is_blank(values[end - 1]):
        end -= 1
    return values[:end]


def filled_count(values: Sequence[Any]) -> int:
    return sum(1 for v in values if not is_blank(v))


def looks_like_header(values: Sequence[Any]) -> bool:
    """Column titles are text: every filled cell of the row is a string."""
    filled = [v for v in values if not is_blank(v)]
    return bool(filled) and all(isinstance(v, str) for v in filled)


def column_names(header: Sequence[Any] | None, width: int) -> list[str]:
    """Titles from the header row; letters where a title is missing; duplicates numbered."""
    names: list[str] = []
    seen: set[str] = set()
    # Next suffix to try per title: a row of 1,024 equal titles stays linear, not quadratic.
    next_suffix: dict[str, int] = {}
    for i in range(width):
        raw = header[i] if header is not None and i < len(header) else None
        base = " ".join(str(raw).split()) if not is_blank(raw) else column_letter(i)
        key = base.casefold()
        name = base
        if key in seen:
            n = next_suffix.get(key, 2)
            while (name := f"{base}_{n}").casefold() in seen:
                n += 1
            next_suffix[key] = n + 1
        seen.add(name.casefold())
        names.append(name)
    return names


def render_text(fields: dict[str, JsonScalar], *, max_chars: int) -> str:
    """The text embedded for a row: `name: value` pairs of the non-empty cells.

    Stops joining once `max_chars` is reached: a row of 1,024 long cells is not first
    rendered whole (megabytes) to keep its first 2,000 characters.
    """
    parts: list[str] = []
    length = -2  # no separator before the first pair
    for k, v in fields.items():
        if is_blank(v):
            continue
        part = f"{k}: {v}"
        parts.append(part)
        length += len(part) + 2
        if length >= max_chars:
            break
    return "; ".join(parts)[:max_chars]


@dataclass(frozen=True, slots=True)
class Record:
    sheet: str
    row: int  # 1-based row number in the source (what a user sees in Excel)
    fields: dict[str, JsonScalar]
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"sheet": self.sheet, "row": self.row, "fields": self.fields, "text": self.text}


class TableReader:
    """Feed rows in order with `add`; records come out once the header question is settled.

    Rows are buffered only while the header is undecided (at most `HEADER_SCAN_ROWS`
    non-empty rows), so memory stays flat however long the table is.
    """

    def __init__(self, sheet: str, *, max_text_chars: int = 2000) -> None:
        self.sheet = sheet
        self.max_text_chars = max_text_chars
        self.header: list[str] | None = None
        self.header_row: int | None = None
        self._names: list[str] = []
        self._pending: list[tuple[int, Sequence[Any]]] = []
        self._decided = False

    def add(self, row_number: int, values: Sequence[Any]) -> Iterator[Record]:
        values = trim(values)
        if not values:
            return
        if self._decided:
            yield self._record(row_number, values)
            return
        self._pending.append((row_number, values))
        if len(self._pending) >= HEADER_SCAN_ROWS:
            yield from self._decide()

    def finish(self) -> Iterator[Record]:
        if not self._decided:
            yield from self._decide()

    def _decide(self) -> Iterator[Record]:
        """The first row at least half as wide as the widest decides: titles, or data.

        Narrower rows above it (a sheet title, a note) are skipped when it is a header.
        """
        self._decided = True
        widest = max((filled_count(v) for _, v in self._pending), default=0)
        pending, self._pending = self._pending, []
        for i, (number, values) in enumerate(pending):
            if 2 * filled_count(values) < widest:
                continue
            if looks_like_header(values):
                self.header = self._names = column_names(values, len(values))
                self.header_row = number
                pending = pending[i + 1 :]
            break
        for number, values in pending:
            yield self._record(number, values)

    def _record(self, row_number: int, values: Sequence[Any]) -> Record:
        names = self._names
        if len(values) > len(names):
            # Wider than any row so far: the extra columns get letter names.
            names = self._names = column_names(self.header, len(values))
        fields = {names[i]: json_scalar(v) for i, v in enumerate(values) if not is_blank(v)}
        return Record(
            sheet=self.sheet,
            row=row_number,
            fields=fields,
            text=render_text(fields, max_chars=self.max_text_chars),
        )


def read_table(
    rows: Iterable[Sequence[Any]], *, sheet: str, max_text_chars: int = 2000
) -> tuple[list[str] | None, list[Record]]:
    """Convenience for small tables: all records of `rows` (numbered from 1) and the header."""
    reader = TableReader(sheet, max_text_chars=max_text_chars)
    out: list[Record] = []
    for number, values in enumerate(rows, start=1):
        out.extend(reader.add(number, values))
    out.extend(reader.finish())
    return reader.header, out

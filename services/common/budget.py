"""How much one uploaded file may turn into: a budget of characters emitted, charged per record.

Size and zip-bomb checks bound what a file *is*, not what it *becomes*: one 16,000-character
shared string referenced by every cell of a sheet is a 20 KB workbook and 80 MB of records.
So whoever turns a file into records (the Excel processor, the API's CSV and text readers)
charges each record here as it is produced and stops at the first one over budget, before
the rest of the file is read.

The budget is the smaller of an absolute bound (what the pods downstream can hold) and a bound
proportional to the input (no file may expand more than `max_ratio` characters per byte),
with a floor so that small files are never refused for their ratio alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tabular import Record

# Default absolute bound, sized by what must pass: a text document of the largest upload
# (50 MB emits at most ~50 M characters: chunking only drops whitespace), and a table of the
# most rows (100k) at ~670 characters per row (names, values and rendered text of about
# twenty ordinary columns). Measured: a 100k x 10 sheet (~50 M characters) lifts the API's
# peak RSS by ~250 MiB while it is read, the Excel processor's by ~275 MiB: one such job fits
# a 512 Mi API pod, two at once may not (lower this, or `ingest_concurrency`, to match).
DEFAULT_MAX_CHARS = 64 * 1024 * 1024
# Default expansion bound, characters per input byte. Ordinary sheets emit 5-100 (repeated
# shared strings included); the shared-string amplifier emits thousands.
DEFAULT_MAX_RATIO = 1000.0
# Below this many characters the ratio is not checked: small files may expand as they like.
RATIO_FLOOR_CHARS = 4 * 1024 * 1024
# What a non-text value (number, bool, null) costs once serialised, about.
SCALAR_CHARS = 8
REASON = "output_budget_exceeded"


class OutputBudgetExceeded(Exception):
    def __init__(self, limit: int, input_bytes: int) -> None:
        message = (
            f"the file would produce more than {limit} characters of records "
            f"(from {input_bytes} bytes): refusing output amplification"
        )
        super().__init__(message)
        self.limit = limit
        self.message = message


def record_chars(record: Record) -> int:
    """Characters a record emits: its column names and values (repeated in every record,
    stored with every object) and its rendered text."""
    total = len(record.text) + len(record.sheet)
    for name, value in record.fields.items():
        total += len(name) + (len(value) if isinstance(value, str) else SCALAR_CHARS)
    return total


@dataclass
class OutputBudget:
    limit: int
    input_bytes: int = 0
    spent: int = 0

    @classmethod
    def for_input(cls, input_bytes: int, *, max_chars: int, max_ratio: float) -> OutputBudget:
        proportional = max(RATIO_FLOOR_CHARS, int(max_ratio * input_bytes))
        return cls(limit=min(max_chars, proportional), input_bytes=input_bytes)

    def charge(self, record: Record) -> None:
        """Count a record; raises OutputBudgetExceeded once the total is over the limit."""
        self.spent += record_chars(record)
        if self.spent > self.limit:
            raise OutputBudgetExceeded(self.limit, self.input_bytes)

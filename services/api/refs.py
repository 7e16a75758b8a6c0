"""Where a stored text occurs: per document, the rows holding it (pure data, no I/O).

One Weaviate object stands for one distinct text; its `refs` property lists the documents
that contain the text and, per document, the rows as ranges of (sheet, first row, last
row). Ranges keep a text repeated on a thousand consecutive rows at one entry, and make
every merge idempotent: adding rows that are already there changes nothing, so a retried
batch or a re-uploaded file leaves the object as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

RowRange = tuple[str, int, int]  # sheet, first row, last row (inclusive)


def merge_ranges(ranges: Iterable[RowRange]) -> tuple[RowRange, ...]:
    """Sorted, with overlapping and adjacent ranges of the same sheet joined."""
    out: list[RowRange] = []
    for sheet, first, last in sorted(ranges):
        if out and out[-1][0] == sheet and first <= out[-1][2] + 1:
            prev = out[-1]
            out[-1] = (sheet, prev[1], max(prev[2], last))
        else:
            out.append((sheet, first, last))
    return tuple(out)


@dataclass(frozen=True)
class Reference:
    """The rows of one document whose text is this object's text."""

    document_id: str
    source: str
    kind: str
    rows: tuple[RowRange, ...]

    @property
    def records(self) -> int:
        return sum(last - first + 1 for _, first, last in self.rows)

    def first_row(self, sheet: str | None = None) -> tuple[str, int] | None:
        for s, first, _ in self.rows:
            if sheet is None or s == sheet:
                return s, first
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "source": self.source,
            "kind": self.kind,
            "rows": [{"sheet": s or None, "first": a, "last": b} for s, a, b in self.rows],
            "records": self.records,
        }


def add_rows(
    refs: Sequence[Reference],
    *,
    document_id: str,
    source: str,
    kind: str,
    rows: Iterable[tuple[str, int]],
) -> list[Reference]:
    """`refs` with `rows` of a document added (a new reference if the document is new)."""
    new = [(sheet, row, row) for sheet, row in rows]
    out: list[Reference] = []
    found = False
    for ref in refs:
        if ref.document_id == document_id:
            ref = replace(ref, rows=merge_ranges([*ref.rows, *new]))
            found = True
        out.append(ref)
    if not found:
        out.append(Reference(document_id, source, kind, merge_ranges(new)))
    return out


def without_document(refs: Sequence[Reference], document_id: str) -> tuple[list[Reference], int]:
    """`refs` without the document's reference, and how many records that removed."""
    kept = [r for r in refs if r.document_id != document_id]
    removed = sum(r.records for r in refs if r.document_id == document_id)
    return kept, removed


def encode(refs: Sequence[Reference]) -> str:
    return json.dumps(
        [[r.document_id, r.source, r.kind, [list(x) for x in r.rows]] for r in refs],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode(raw: str | None) -> list[Reference]:
    if not raw:
        return []
    return [
        Reference(str(d), str(s), str(k), tuple((str(a), int(b), int(c)) for a, b, c in rows))
        for d, s, k, rows in json.loads(raw)
    ]


def filter_properties(refs: Sequence[Reference]) -> dict[str, list[str]]:
    """The filterable array properties of an object with these references."""

    def distinct(values: Iterable[str]) -> list[str]:
        return list(dict.fromkeys(values))

    return {
        "document_ids": distinct(r.document_id for r in refs),
        "sources": distinct(r.source for r in refs),
        "kinds": distinct(r.kind for r in refs),
        "sheets": distinct(s for r in refs for s, _, _ in r.rows),
    }


def matching(
    refs: Sequence[Reference],
    *,
    document_id: str | None = None,
    source: str | None = None,
    kind: str | None = None,
    sheet: str | None = None,
) -> list[Reference]:
    """The references that satisfy every given filter at once.

    Weaviate filters each array property on its own (document A may match `source` and
    document B `kind`); this is the exact check on the candidates it returns.
    """
    return [
        r
        for r in refs
        if (document_id is None or r.document_id == document_id)
        and (source is None or r.source == source)
        and (kind is None or r.kind == kind)
        and (sheet is None or r.first_row(sheet) is not None)
    ]

"""The workbook reader and the archive checks, without HTTP: records, headers, limits."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import Workbook

from indexforge_services.common.tabular import column_names, read_table
from indexforge_services.excel.archive import ArchiveLimits, Kind, check_archive, sniff
from indexforge_services.excel.errors import ExcelRejected
from indexforge_services.excel.workbook import ReadLimits, parse_workbook

from .workbooks import (
    PRODUCTS,
    PRODUCTS_HEADER,
    encrypted_xlsx,
    garbled_xlsx,
    legacy_xls,
    plain_zip,
    products_xlsx,
    truncated_xlsx,
    wide_xlsx,
    xlsx,
    zip_bomb,
)


def test_products_become_one_record_per_row_with_header_names() -> None:
    parsed = parse_workbook(products_xlsx(), ReadLimits())
    (sheet,) = parsed.sheets
    assert sheet.header == list(PRODUCTS_HEADER) and sheet.header_row == 1
    assert sheet.rows == len(PRODUCTS) == len(parsed.records)
    fridge = parsed.records[1]
    assert (fridge.sheet, fridge.row) == ("Products", 3)
    assert fridge.fields == dict(zip(PRODUCTS_HEADER, PRODUCTS[1], strict=True))
    assert fridge.text.startswith("SKU: F-200; Name: Compact refrigerator; Description: Fridge")


def test_title_rows_above_the_header_are_skipped_and_row_numbers_kept() -> None:
    data = xlsx(
        {
            "Q1": [
                ["Quarterly figures"],
                [],
                ["Region", "Revenue", "When"],
                ["North", 10.5, dt.datetime(2024, 3, 31, 12, 0)],
                [],
                ["South", None, None],
            ]
        }
    )
    parsed = parse_workbook(data, ReadLimits())
    assert parsed.sheets[0].header == ["Region", "Revenue", "When"]
    assert [(r.row, r.fields) for r in parsed.records] == [
        (4, {"Region": "North", "Revenue": 10.5, "When": "2024-03-31T12:00:00"}),
        (6, {"Region": "South"}),
    ]


def test_sheet_without_header_gets_letter_columns() -> None:
    parsed = parse_workbook(xlsx({"Numbers": [[1, 2], [3, 4, 5]]}), ReadLimits())
    assert parsed.sheets[0].header is None
    assert [r.fields for r in parsed.records] == [{"A": 1, "B": 2}, {"A": 3, "B": 4, "C": 5}]


def test_every_sheet_is_read_and_duplicate_titles_are_numbered() -> None:
    data = xlsx({"One": [["Name", "name", ""], ["a", "b", "c"]], "Two": [["Only"], ["x"]]})
    parsed = parse_workbook(data, ReadLimits())
    assert [(s.name, s.rows) for s in parsed.sheets] == [("One", 1), ("Two", 1)]
    assert parsed.records[0].fields == {"Name": "a", "name_2": "b", "C": "c"}
    assert column_names(["x", None, "X"], 4) == ["x", "B", "X_2", "D"]


def test_formulas_are_never_evaluated() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Item", "Total"])
    sheet.append(["a", "=1+2"])  # openpyxl stores the formula without a cached value
    buf = io.BytesIO()
    workbook.save(buf)
    (record,) = parse_workbook(buf.getvalue(), ReadLimits()).records
    # No cached value, and no evaluation: the cell is empty, never 3 nor the formula text.
    assert record.fields == {"Item": "a"}


def test_csv_style_tables_share_the_reader() -> None:
    header, records = read_table([["a", "b"], ["1", "2"]], sheet="")
    assert header == ["a", "b"] and records[0].text == "a: 1; b: 2"


@pytest.mark.parametrize(
    ("limits", "data", "reason", "words"),
    [
        (ReadLimits(max_rows=5), products_xlsx(), "too_many_rows", "more than 5 data rows"),
        (ReadLimits(max_columns=3), products_xlsx(), "too_many_columns", "4 columns"),
        (ReadLimits(), wide_xlsx(10_000), "too_many_columns", "10000 columns"),
        (
            ReadLimits(max_sheets=1),
            xlsx({"a": [["x"]], "b": [["y"]]}),
            "too_many_sheets",
            "2 sheets",
        ),
        (
            ReadLimits(max_cell_chars=20),
            products_xlsx(),
            "cell_too_long",
            "row 2: a cell has 39 characters",
        ),
    ],
    ids=["rows", "columns", "10k-columns", "sheets", "cell"],
)
def test_limits_reject_with_a_reason(
    limits: ReadLimits, data: bytes, reason: str, words: str
) -> None:
    with pytest.raises(ExcelRejected) as caught:
        parse_workbook(data, limits)
    assert caught.value.status == 422 and caught.value.reason == reason
    assert words in caught.value.message, caught.value.message


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", 400, "empty"),
        (b"name,price\nfridge,399\n", 415, "not_xlsx"),
        (encrypted_xlsx(), 415, "encrypted"),
        (legacy_xls(), 415, "legacy_xls"),
        (truncated_xlsx(), 400, "corrupt"),
        (garbled_xlsx(), 400, "corrupt"),
        (plain_zip(), 415, "not_xlsx"),
        (zip_bomb(64), 422, "zip_bomb"),
    ],
    ids=["empty", "csv", "encrypted", "xls", "truncated", "garbled", "zip", "bomb"],
)
def test_unreadable_or_unsafe_files_are_rejected(data: bytes, status: int, reason: str) -> None:
    with pytest.raises(ExcelRejected) as caught:
        parse_workbook(data, ReadLimits())
    assert (caught.value.status, caught.value.reason) == (status, reason), caught.value.message


def test_zip_bomb_is_refused_from_the_directory_alone() -> None:
    bomb = zip_bomb(64)
    assert len(bomb) < 200_000  # 64 MiB of sheet in a small file: the ratio is what gives it away
    with pytest.raises(ExcelRejected, match="expands"):
        check_archive(bomb, ArchiveLimits())
    # Under a lenient ratio, the declared total still bounds what would be inflated.
    lenient = ArchiveLimits(max_compression_ratio=1e9, max_uncompressed_bytes=32 * 1024 * 1024)
    with pytest.raises(ExcelRejected, match="declares"):
        check_archive(bomb, lenient)


def test_sniff_goes_by_content_not_name() -> None:
    assert sniff(products_xlsx()) is Kind.ZIP
    assert sniff(encrypted_xlsx()) is Kind.ENCRYPTED
    assert sniff(b"a,b\n") is Kind.OTHER
    check_archive(products_xlsx(), ArchiveLimits())  # a real workbook passes

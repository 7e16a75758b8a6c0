"""Upload checks of the API that need no server: type by content, UTF-8, CSV limits, chunks."""

from __future__ import annotations

import pytest

from indexforge_services.api.uploads import (
    UploadRejected,
    chunk_text,
    prepare_upload,
    safe_name,
)

from .conftest import api_settings
from .workbooks import encrypted_xlsx, products_xlsx, truncated_xlsx, wide_xlsx, zip_bomb

SETTINGS = api_settings(max_upload_bytes=1024 * 1024, max_rows=50, max_columns=8)


def test_csv_rows_become_records_with_header_fields() -> None:
    data = b"name;price\nfridge;399\n\ntoaster;24.5\n"
    prepared = prepare_upload("shop/prices.csv", data, SETTINGS)
    assert (prepared.kind, prepared.source) == ("csv", "prices.csv")
    assert [(r.row, r.fields) for r in prepared.records] == [
        (2, {"name": "fridge", "price": "399"}),
        (4, {"name": "toaster", "price": "24.5"}),
    ]


def test_text_is_chunked_at_paragraphs_and_sentences() -> None:
    text = "First paragraph. " * 3 + "\n\n" + "A sentence that is long. " * 100
    chunks = chunk_text(text, size=200)
    assert chunks[0] == "First paragraph. First paragraph. First paragraph."
    assert all(len(c) <= 200 for c in chunks)
    assert all(c.endswith(".") for c in chunks)  # cut at sentence ends, not mid-word
    assert chunk_text("x" * 450, size=200) == ["x" * 200, "x" * 200, "x" * 50]


def test_xlsx_is_passed_on_for_the_excel_processor() -> None:
    prepared = prepare_upload("products.xlsx", products_xlsx(), SETTINGS)
    assert prepared.kind == "xlsx" and prepared.records == [] and prepared.workbook


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("a.csv", products_xlsx(), 415, "binary office/ZIP"),  # an .xlsx renamed .csv
        ("a.txt", encrypted_xlsx(), 415, "binary office/ZIP"),
        ("a.csv", "prix;café\n".encode("latin-1"), 422, "not valid UTF-8"),
        ("a.txt", b"abc\x00def", 415, "NUL bytes"),
        ("a.csv", b"", 400, "empty"),
        ("a.pdf", b"%PDF-1.7", 415, "unsupported file type"),
        ("noext", b"hello", 415, "unsupported file type"),
        ("a.xlsx", b"name,price\n", 415, "not an .xlsx"),
        ("a.xlsx", truncated_xlsx(), 400, "corrupt"),
        ("a.xlsx", zip_bomb(32), 422, "zip bomb"),
        ("a.xlsx", wide_xlsx(10_000), 422, "declares 10000 columns"),
        ("a.csv", b"x" * (1024 * 1024 + 1), 413, "limit is 1048576"),
        ("a.csv", ("," * 20 + "\n").encode(), 422, "21 columns"),
        ("a.csv", ("a\n" + "row\n" * 60).encode(), 422, "more than 50 data rows"),
        ("a.csv", b"a,b\n\n\n", 422, "no data rows"),
        ("a.txt", b" \n\t ", 422, "no text"),
        ("a.csv", b'a,b\n"unterminated,1\n', 422, "malformed CSV"),
    ],
    ids=[
        "xlsx-renamed-csv", "encrypted-as-txt", "latin1-csv", "nul", "zero-bytes", "pdf",
        "no-extension", "csv-named-xlsx", "corrupt-xlsx", "zip-bomb", "10k-columns", "over-limit",
        "too-wide", "too-long", "header-only", "blank-text", "bad-quoting",
    ],
)  # fmt: skip
def test_bad_uploads_are_refused_before_a_job_exists(
    name: str, data: bytes, status: int, words: str
) -> None:
    with pytest.raises(UploadRejected) as caught:
        prepare_upload(name, data, SETTINGS)
    assert caught.value.status == status, caught.value.message
    assert words in caught.value.message, caught.value.message


def test_file_names_are_reduced_to_a_printable_base_name() -> None:
    assert safe_name("C:\\Users\\me\\report.csv") == "report.csv"
    assert safe_name("../../etc/passwd\x00.txt") == "passwd.txt"
    assert safe_name(None) == ""

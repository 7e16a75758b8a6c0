"""Response models of the Excel processor (they are its OpenAPI contract)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..common.tabular import JsonScalar


class ErrorResponse(BaseModel):
    error: str
    code: str | None = None
    reason: str | None = None
    correlation_id: str | None = None


class RecordOut(BaseModel):
    sheet: str
    row: int = Field(description="1-based row number in the sheet.")
    fields: dict[str, JsonScalar] = Field(description="Column name -> cell value.")
    text: str = Field(description="The row rendered as text, as it is embedded.")


class SheetOut(BaseModel):
    name: str
    header: list[str] | None = Field(description="Detected column titles; null when none.")
    header_row: int | None
    rows: int


class ParseResponse(BaseModel):
    sha256: str
    sheets: list[SheetOut]
    row_count: int
    records: list[RecordOut]
    seconds: float = Field(description="Time the read took (of the original parse if cached).")
    cached: bool


class LimitsResponse(BaseModel):
    max_upload_bytes: int
    max_rows: int
    max_columns: int
    max_sheets: int
    max_cell_chars: int
    max_uncompressed_bytes: int
    max_compression_ratio: float
    max_output_chars: int
    max_output_ratio: float


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "Empty, corrupt or unreadable file"),
        (413, "File over the size limit"),
        (415, "Not an .xlsx workbook (by content), encrypted, or legacy .xls"),
        (
            422,
            "Over a row/column/sheet/cell limit or the output budget, a likely zip bomb, "
            "or no file part",
        ),
    )
}

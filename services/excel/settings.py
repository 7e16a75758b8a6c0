"""Excel processor settings (`INDEXFORGE_*`; the operator sets MAX_UPLOAD_BYTES and MAX_ROWS)."""

from __future__ import annotations

from pydantic import Field

from ..common import budget
from ..common.settings import ServiceSettings
from .archive import ArchiveLimits
from .workbook import ReadLimits

MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and part headers around the file


class ExcelSettings(ServiceSettings):
    service_name: str = "indexforge-excel"
    cache_namespace: str = "excel"

    max_upload_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest accepted .xlsx file (413 above)."
    )
    max_rows: int = Field(default=100_000, ge=1, description="Most data rows per workbook.")
    max_columns: int = Field(default=1024, ge=1, le=16_384, description="Most columns per sheet.")
    max_sheets: int = Field(default=32, ge=1, description="Most worksheets per workbook.")
    max_cell_chars: int = Field(default=16_384, ge=1, description="Longest text cell.")
    max_text_chars: int = Field(
        default=2000, ge=16, description="Rendered row text (what is embedded) is cut here."
    )
    max_output_chars: int = Field(
        default=budget.DEFAULT_MAX_CHARS,
        ge=1024,
        description="Most characters of records (column names, values, rendered text) one "
        "workbook may produce; counted while reading, 422 output_budget_exceeded above.",
    )
    max_output_ratio: float = Field(
        default=budget.DEFAULT_MAX_RATIO,
        gt=0,
        description="Most characters of records per byte of workbook (above a 4 Mi floor): "
        "a small file cannot expand into huge output.",
    )
    max_uncompressed_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024, description="Declared unpacked size of the archive."
    )
    max_compression_ratio: float = Field(
        default=200.0,
        gt=1,
        description="Largest expansion of one archive member, and of the archive as a whole "
        "(zip bombs).",
    )
    max_archive_entries: int = Field(default=2000, ge=1)
    parse_concurrency: int = Field(
        default=2, ge=1, description="Workbooks parsed at once (CPU and memory bound)."
    )
    result_cache_ttl_seconds: float = Field(
        default=1800.0, gt=0, description="Parsed results cached by content hash."
    )
    result_cache_max_rows: int = Field(
        default=20_000, ge=0, description="Larger results are not cached (Redis memory)."
    )

    def read_limits(self) -> ReadLimits:
        return ReadLimits(
            max_rows=self.max_rows,
            max_columns=self.max_columns,
            max_sheets=self.max_sheets,
            max_cell_chars=self.max_cell_chars,
            max_text_chars=self.max_text_chars,
            max_output_chars=self.max_output_chars,
            max_output_ratio=self.max_output_ratio,
            archive=ArchiveLimits(
                max_uncompressed_bytes=self.max_uncompressed_bytes,
                max_compression_ratio=self.max_compression_ratio,
                max_entries=self.max_archive_entries,
            ),
        )

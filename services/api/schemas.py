"""Request and response models of the API (its OpenAPI contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..common.tabular import JsonScalar


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, for people (no internal details).")
    code: str | None = Field(
        default=None, description="Stable machine-readable code, e.g. search_unavailable."
    )
    correlation_id: str | None = Field(
        default=None, description="Also in X-Request-ID: quote it when reporting a problem."
    )


class TextDocument(BaseModel):
    """A plain-text document sent as JSON."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1_000_000, description="The document's text.")
    source: str | None = Field(
        default=None, max_length=255, description="Where it came from (shown in search hits)."
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value


class JobAccepted(BaseModel):
    job_id: str
    document_id: str
    status: Literal["queued"]
    status_url: str


class Job(BaseModel):
    id: str
    status: Literal["queued", "processing", "completed", "failed"]
    stage: str | None = None
    document_id: str
    source: str
    kind: str
    records: int = Field(description="Records found in the document (known once it is read).")
    written: int = Field(description="Records stored in Weaviate (0 unless completed).")
    added: int = Field(
        default=0,
        description="Distinct texts stored for the first time; a row whose text is already "
        "stored (in this document or another) joins that object instead.",
    )
    error: str | None = Field(
        default=None, description="Why it failed, for people (details are in the API log)."
    )
    reason: str | None = Field(
        default=None,
        description="Why it failed (stable code): rejected, excel_unavailable, ml_unavailable, "
        "weaviate_unavailable, shutdown, internal, or the Excel processor's reason for "
        "refusing the workbook (output_budget_exceeded, zip_bomb, too_many_rows, ...).",
    )
    correlation_id: str | None = Field(
        default=None, description="Correlation id of the upload: the job's log lines carry it."
    )
    attempts: int = Field(
        default=0,
        description="Tries so far when ingestion runs through the queue (retries back off; "
        "0 in-process).",
    )
    created_at: float
    updated_at: float


class RowSpan(BaseModel):
    sheet: str | None
    first: int
    last: int


class Reference(BaseModel):
    """A document holding the hit's text, and the rows (ranges) where it does."""

    document_id: str
    source: str
    kind: str
    rows: list[RowSpan]
    records: int


class Hit(BaseModel):
    id: str | None = Field(
        default=None, description="Object id: the same for every row with the same text."
    )
    document_id: str | None
    source: str | None
    kind: str | None
    sheet: str | None
    row: int | None
    text: str | None
    fields: dict[str, JsonScalar]
    distance: float | None = None
    score: float | None = Field(default=None, description="Cosine similarity; higher is closer.")
    hybrid_score: float | None = Field(
        default=None, description="Hybrid fusion score (alpha < 1 only); hits are in its order."
    )
    references: list[Reference] = Field(
        default_factory=list,
        description="Documents and rows holding this text, at most 20 (the first matching "
        "one is also in document_id/source/kind/sheet/row).",
    )
    documents: int = Field(default=0, description="How many documents hold this text.")


class DocumentOut(BaseModel):
    id: str
    source: str | None
    kind: str | None
    records: int
    sample: list[Hit] = Field(
        description="Its first distinct texts, in the sheet/row order of where each was "
        "first stored."
    )


class Deleted(BaseModel):
    id: str
    deleted: int


class SearchResponse(BaseModel):
    query: str
    limit: int
    alpha: float
    min_score: float
    filters: dict[str, Any]
    results: list[Hit]
    cached: bool


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed request",
        404: "Not found",
        413: "Upload over the size limit",
        415: "Unsupported or mismatched file type",
        422: "Invalid input",
        429: "Too many uploads in progress: retry after Retry-After seconds",
        503: "A dependency (Weaviate, Excel processor, ML) is unavailable",
    }
    return {s: {"model": ErrorResponse, "description": text[s]} for s in statuses}

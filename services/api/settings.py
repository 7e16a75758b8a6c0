"""API service settings. The operator passes the dependency URLs and cache TTLs (see
`operator/indexforge_operator/builders/api.py`); everything has a loopback default."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from ..common.settings import ServiceSettings

MULTIPART_OVERHEAD_BYTES = 64 * 1024


class ApiSettings(ServiceSettings):
    service_name: str = "indexforge-api"
    cache_namespace: str = "api"

    weaviate_url: str = Field(
        default="http://127.0.0.1:8080", description="Weaviate REST base URL."
    )
    weaviate_grpc_port: int = Field(
        default=50051, ge=1, le=65535, description="Weaviate gRPC port (same host as REST)."
    )
    weaviate_collection: str = Field(
        default="IndexForgeRecord",
        pattern=r"^[A-Z][A-Za-z0-9_]{0,127}$",
        description="Collection holding one object per document chunk / table row.",
    )
    weaviate_batch_size: int = Field(default=100, ge=1, le=1000, description="Objects per write.")
    weaviate_timeout_seconds: float = Field(default=30.0, gt=0)

    ml_url: str | None = Field(
        default=None,
        description="ML service; ingestion embeds through it in batches. Unset: Weaviate's "
        "text2vec-transformers module vectorizes each object itself.",
    )
    embed_batch_size: int = Field(default=64, ge=1, le=128, description="Texts per ML call.")
    excel_url: str | None = Field(
        default=None, description="Excel processor; unset means .xlsx uploads are refused."
    )
    excel_timeout_seconds: float = Field(default=120.0, gt=0)
    upstream_retry_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per call to the Excel processor / ML service."
    )
    upstream_breaker_threshold: int = Field(default=5, ge=1)
    upstream_breaker_reset_seconds: float = Field(default=10.0, gt=0)

    cache_response_ttl_seconds: float = Field(
        default=300.0, gt=0, description="Cached search responses."
    )
    cache_session_ttl_seconds: float = Field(
        default=86_400.0, gt=0, description="How long job status records are kept."
    )
    rate_limit_window_seconds: int = Field(
        default=3600, ge=1, description="Window of the per-consumer request counters."
    )

    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=100_000, ge=1, description="Most rows/chunks per document.")
    max_columns: int = Field(default=1024, ge=1, description="Most columns in a CSV file.")
    max_cell_chars: int = Field(default=16_384, ge=1, description="Longest CSV field.")
    max_text_chars: int = Field(
        default=2000, ge=16, description="Rendered row text (what is embedded) is cut here."
    )
    chunk_chars: int = Field(
        default=1000, ge=100, le=20_000, description="Text documents are split into chunks."
    )
    ingest_concurrency: int = Field(default=2, ge=1, description="Ingestion jobs run at once.")

    @field_validator("weaviate_url", "ml_url", "excel_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s):// URL, got {value!r}")
        return value.rstrip("/")

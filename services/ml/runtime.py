"""The ML service's live objects (model, batcher, embedding service) and their lifecycle.

`MLService` is created with the app; its `lifespan` loads the model once (off the event
loop), starts the batcher, and tears both down on shutdown. Routes reach the objects
through the `ML` dependency, which answers 503 while they are not there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import torch
from fastapi import Depends, HTTPException, Request

from ..common.app import ServiceContext, get_context
from ..common.sentry import Event
from ..common.tracing import tracer
from .backends import load_encoder
from .batching import MicroBatcher
from .embedding import EmbeddingService
from .metrics import MLMetrics
from .model import DEFAULT_MODEL_NAME, Encoder, resolve_device
from .settings import MLSettings

ML_ROUTE_PREFIXES = ("/vectors", "/api/v1/ml/")


@dataclass
class MLRuntime:
    settings: MLSettings
    encoder: Encoder
    batcher: MicroBatcher
    embeddings: EmbeddingService


def is_ml_transaction(event: Event) -> bool:
    """Is this Sentry event from an inference route? (Transaction = route template.)"""
    candidates = [str(event.get("transaction") or "")]
    url = (event.get("request") or {}).get("url")
    if isinstance(url, str):
        candidates.append(urlsplit(url).path)
    return any(c.startswith(ML_ROUTE_PREFIXES) for c in candidates)


class MLService:
    def __init__(self, settings: MLSettings, *, encoder: Encoder | None = None) -> None:
        self.settings = settings
        self._encoder = encoder
        self.runtime: MLRuntime | None = None
        self.model_name = (
            encoder.name
            if encoder is not None
            else (
                settings.model_name
                or (DEFAULT_MODEL_NAME if settings.model_path is None else settings.model_path.name)
            )
        )
        self.device = (
            encoder.device
            if encoder is not None
            else resolve_device(settings.device, cuda_available=torch.cuda.is_available())
        )
        self.metrics: MLMetrics | None = None

    def attach(self, ctx: ServiceContext) -> None:
        """Register metrics and the readiness check (once, when the app is built)."""
        self.metrics = MLMetrics(ctx.registry, model=self.model_name, device=self.device)
        ctx.health.add("model", self._model_ready)

    async def _model_ready(self) -> bool:
        return self.runtime is not None and self.runtime.batcher.running

    def _load(self) -> Encoder:
        return load_encoder(self.settings, cuda_available=torch.cuda.is_available())

    @asynccontextmanager
    async def lifespan(self, ctx: ServiceContext) -> AsyncIterator[None]:
        encoder: Encoder = (
            self._encoder if self._encoder is not None else await asyncio.to_thread(self._load)
        )
        self._encoder = encoder  # a restarted lifespan (tests) reuses the loaded model
        s = self.settings
        trace = tracer(ctx.tracer_provider, "indexforge.ml")
        batcher = MicroBatcher(
            encoder.encode,
            max_batch=s.batch_max_size,
            max_wait=s.batch_max_wait_ms / 1000,
            max_tokens=s.batch_max_tokens,
            # Fakes in tests have no tokenizer: they get first-come batches.
            measure=getattr(encoder, "token_lengths", None),
            observe=self.metrics.observe_batch if self.metrics else None,
            tracer=trace,
        )
        batcher.start()
        service = EmbeddingService(
            encoder, batcher, ctx.cache, ttl=s.embedding_cache_ttl_seconds, tracer=trace
        )
        self.runtime = MLRuntime(s, encoder, batcher, service)
        ctx.state["ml"] = self.runtime
        try:
            yield
        finally:
            self.runtime = None
            ctx.state.pop("ml", None)
            await batcher.stop()

    def sentry_enricher(self, event: Event) -> None:
        """Add the `ml` context (model, batch size, device) to events of inference routes."""
        if not is_ml_transaction(event):
            return
        runtime = self.runtime
        event.setdefault("contexts", {})["ml"] = {
            "model": self.model_name,
            "device": self.device,
            "max_batch_size": self.settings.batch_max_size,
            "batch_size": runtime.batcher.last_batch_size if runtime else None,
        }


def get_ml(request: Request) -> MLRuntime:
    runtime: Any = get_context(request).state.get("ml")
    if not isinstance(runtime, MLRuntime):
        raise HTTPException(status_code=503, detail="model is not loaded yet")
    return runtime


ML = Annotated[MLRuntime, Depends(get_ml)]

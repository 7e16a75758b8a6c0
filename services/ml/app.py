"""Build the ML service application from settings (and, in tests, an already-loaded model)."""

from __future__ import annotations

from fastapi import FastAPI
from sentry_sdk.transport import Transport

from ..common.app import create_service_app
from .model import Encoder
from .routes import api, weaviate
from .runtime import MLService
from .settings import MLSettings

# Weaviate's text2vec-transformers client calls these without custom headers, so they cannot
# require the gateway token; only Weaviate (and the API) may reach the ML service at all,
# which the NetworkPolicy enforces. /api/v1/ml/* still requires the token.
WEAVIATE_PROTOCOL_PATHS = (
    "/vectors",
    "/vectors/",
    "/meta",
    "/.well-known/live",
    "/.well-known/ready",
)


def create_app(
    settings: MLSettings | None = None,
    *,
    encoder: Encoder | None = None,
    sentry_transport: Transport | None = None,
) -> FastAPI:
    """`encoder` skips loading the model (tests share one across apps; fakes inject errors)."""
    settings = settings or MLSettings()
    service = MLService(settings, encoder=encoder)
    app = create_service_app(
        settings,
        title="IndexForge ML inference",
        description="Sentence embeddings; speaks Weaviate's text2vec-transformers protocol.",
        routers=[weaviate.router, api.router],
        lifespan=service.lifespan,
        info={"model": service.model_name, "device": service.device},
        cache_name="ml-embeddings",
        cache_ttl=settings.embedding_cache_ttl_seconds,
        sentry_enrichers=[service.sentry_enricher],
        sentry_transport=sentry_transport,
        auth_exempt=WEAVIATE_PROTOCOL_PATHS,
    )
    service.attach(app.state.service)
    app.state.ml_service = service
    return app

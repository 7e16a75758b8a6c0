"""Weaviate text2vec-transformers inference protocol: `/vectors`, `/meta`, `/.well-known/*`.

Weaviate waits for `/.well-known/ready` (any 2xx) at startup, reads `/meta` into its module
metadata, and posts every object/query text to `/vectors`.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from ...common.app import get_context
from ...common.errors import error_body
from ..limits import check_dimensions, check_pooling, check_texts
from ..runtime import ML, MLRuntime
from ..schemas import (
    ERROR_RESPONSES,
    ErrorResponse,
    VectorBatchResponse,
    VectorResponse,
    VectorsRequest,
)

# Weaviate's Go client posts JSON without a Content-Type header. FastAPI >= 0.12x ignores
# such bodies unless strict content-type checking is off (older versions always parse).
_LAX: dict[str, Any] = (
    {"strict_content_type": False}
    if "strict_content_type" in inspect.signature(APIRouter).parameters
    else {}
)
router = APIRouter(tags=["weaviate"], **_LAX)


@router.get("/.well-known/live", status_code=204, summary="Liveness (Weaviate protocol)")
async def live() -> Response:
    return Response(status_code=204)


@router.get(
    "/.well-known/ready",
    status_code=204,
    summary="Readiness (Weaviate protocol): 204 once the model is loaded",
    responses={503: {"model": ErrorResponse}},
)
async def ready(request: Request) -> Response:
    runtime = get_context(request).state.get("ml")
    if not isinstance(runtime, MLRuntime) or not runtime.batcher.running:
        return JSONResponse(error_body("model is not loaded yet"), status_code=503)
    return Response(status_code=204)


@router.get("/meta", summary="Model metadata (Weaviate protocol)", responses=ERROR_RESPONSES)
async def meta(ml: ML) -> dict[str, Any]:
    return ml.encoder.meta()


@router.post(
    "/vectors",
    summary="Embed one text (`text`) or several (`texts`)",
    response_model=VectorResponse | VectorBatchResponse,
    responses=ERROR_RESPONSES,
)
@router.post("/vectors/", include_in_schema=False)
async def vectors(body: VectorsRequest, ml: ML) -> VectorResponse | VectorBatchResponse:
    s = ml.settings
    texts = [body.text] if body.text is not None else list(body.texts or [])
    config = body.config
    problem = (
        check_texts(
            texts,
            max_chars=s.max_text_chars,
            max_count=s.max_texts_per_request,
            field="text" if body.text is not None else "texts",
            indexed=body.text is None,
        )
        or check_pooling(config.pooling_strategy if config else None)
        or check_dimensions(config.dimensions if config else None, ml.encoder.dim)
    )
    if problem:
        raise HTTPException(status_code=422, detail=problem)
    found = await ml.embeddings.embed(texts)
    dim = ml.encoder.dim
    if body.text is not None:
        return VectorResponse(text=body.text, vector=found[0].tolist(), dim=dim, dims=dim)
    return VectorBatchResponse(vectors=[v.tolist() for v in found], dim=dim, dims=dim)

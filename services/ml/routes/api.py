"""The service's own API under `/api/v1/ml`: batch embeddings and pairwise similarity."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException

from ..limits import check_pairs, check_texts
from ..runtime import ML
from ..schemas import (
    ERROR_RESPONSES,
    EmbeddingsRequest,
    EmbeddingsResponse,
    SimilarityRequest,
    SimilarityResponse,
)

router = APIRouter(prefix="/api/v1/ml", tags=["ml"])


def _enforce(ml: ML, texts: list[str], field: str) -> None:
    problem = check_texts(
        texts,
        max_chars=ml.settings.max_text_chars,
        max_count=ml.settings.max_texts_per_request,
        field=field,
    )
    if problem:
        raise HTTPException(status_code=422, detail=problem)


@router.post("/embeddings", summary="Embed a batch of texts", responses=ERROR_RESPONSES)
async def embeddings(body: EmbeddingsRequest, ml: ML) -> EmbeddingsResponse:
    _enforce(ml, body.texts, "texts")
    found = await ml.embeddings.embed(body.texts)
    return EmbeddingsResponse(
        model=ml.encoder.name, dim=ml.encoder.dim, embeddings=[v.tolist() for v in found]
    )


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Vectors are unit length, so the dot product is the cosine; clipped for rounding."""
    return float(np.clip(np.dot(a, b), -1.0, 1.0))


@router.post("/similarity", summary="Cosine similarity of text pairs", responses=ERROR_RESPONSES)
async def similarity(body: SimilarityRequest, ml: ML) -> SimilarityResponse:
    problem = check_pairs(
        [(p.a, p.b) for p in body.pairs],
        max_chars=ml.settings.max_text_chars,
        max_count=ml.settings.max_texts_per_request,
    )
    if problem:
        raise HTTPException(status_code=422, detail=problem)
    flat = [text for pair in body.pairs for text in (pair.a, pair.b)]
    found = await ml.embeddings.embed(flat)
    scores = [cosine(found[i], found[i + 1]) for i in range(0, len(found), 2)]
    return SimilarityResponse(model=ml.encoder.name, scores=scores)

"""`GET /api/v1/search`: ranked search (see `ranking.py`), cached per query in the app Redis.

Cached responses carry the `search` tag; every completed upload and every delete
invalidates the tag, so a cached answer never outlives a change to what is stored (for
longer than the invalidation takes). `X-Cache: hit|stale|miss` says where an answer came from.
Answers may also be kept by Kong's proxy-cache for `gateway_cache_max_age_seconds`
(`cache_control.py`), which no invalidation reaches.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from ...common.errors import ServiceError
from ..cache_control import SharedCache
from ..ingest import SEARCH_TAG
from ..ranking import Ranking, SearchRequest
from ..ranking import search as ranked_search
from ..runtime import Api, count_consumer
from ..schemas import SearchResponse, error_responses
from ..store import SearchFilters, StoreUnavailable
from ..upstream import UpstreamRejected, UpstreamUnavailable

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api/v1", tags=["search"], dependencies=[Depends(count_consumer), SharedCache]
)

MAX_LIMIT = 100
FilterValue = Annotated[str | None, Query(min_length=1, max_length=255)]


def cache_key(request: SearchRequest) -> str:
    raw = json.dumps(request.key(), ensure_ascii=False)
    return "search:" + hashlib.sha256(raw.encode()).hexdigest()


async def query_vector(api: Api, query: str) -> list[float] | None:
    """The query's embedding from the ML service; None lets Weaviate vectorize the text.

    One embedding serves every query of the search (the vector, keyword-rescoring and
    hybrid queries), instead of Weaviate's module embedding the text once per query.
    """
    if api.ml is None:
        return None
    try:
        response = await api.ml.request("POST", "/api/v1/ml/embeddings", json={"texts": [query]})
    except (UpstreamUnavailable, UpstreamRejected):
        return None  # Weaviate's module asks the ML service itself (and fails clearly)
    vectors = response.json()["embeddings"]
    return [float(x) for x in vectors[0]]


@router.get(
    "/search",
    summary="Search every stored document chunk and table row by meaning (and keywords)",
    responses=error_responses(422, 503),
)
async def search(
    api: Api,
    response: Response,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="What to look for.")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most hits returned.")] = 10,
    alpha: Annotated[
        float | None,
        Query(
            ge=0.0,
            le=1.0,
            description="1: rank by cosine similarity (keyword matches join the candidates); "
            "0..1: hybrid fusion, alpha * vector + (1 - alpha) * BM25; 0: keywords only. "
            "Default: the service's INDEXFORGE_SEARCH_ALPHA.",
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        Query(
            ge=-1.0,
            le=1.0,
            description="Hits with a lower cosine similarity are not returned. "
            "Default: the service's INDEXFORGE_SEARCH_MIN_SCORE.",
        ),
    ] = None,
    document_id: FilterValue = None,
    source: FilterValue = None,
    kind: FilterValue = None,
    sheet: FilterValue = None,
) -> SearchResponse:
    query = " ".join(q.split())
    if not query:
        raise HTTPException(status_code=422, detail="q must not be blank")
    settings = api.settings
    request = SearchRequest(
        query=query,
        limit=limit,
        alpha=settings.search_alpha if alpha is None else alpha,
        min_score=settings.search_min_score if min_score is None else min_score,
        filters=SearchFilters(document_id=document_id, source=source, kind=kind, sheet=sheet),
    )
    ranking = Ranking.from_settings(settings)

    async def run() -> dict[str, Any]:
        vector = await query_vector(api, query)
        return {"results": await ranked_search(api.store, request, vector, ranking)}

    try:
        found, status = await api.ctx.cache.lookup(
            cache_key(request), run, ttl=settings.cache_response_ttl_seconds, tags=[SEARCH_TAG]
        )
    except StoreUnavailable as exc:
        log.warning("search failed: %s", exc)
        raise ServiceError(503, exc.public, code=exc.code) from exc
    api.metrics.searches.labels(status).inc()
    response.headers["X-Cache"] = status
    filters = request.filters
    return SearchResponse.model_validate(
        {
            "query": query,
            "limit": limit,
            "alpha": request.alpha,
            "min_score": request.min_score,
            "filters": {
                k: v
                for k, v in zip(
                    ("document_id", "source", "kind", "sheet"), filters.key(), strict=True
                )
                if v is not None
            },
            "results": found["results"],
            "cached": status != "miss",
        }
    )

"""`GET /api/v1/search`: nearText in Weaviate, cached per query in the app Redis.

Cached responses carry the `search` tag; every completed upload and every delete
invalidates the tag, so a cached answer never outlives a change to what is stored (for
longer than the invalidation takes). `X-Cache: hit|stale|miss` says where an answer came from.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from ..ingest import SEARCH_TAG
from ..runtime import Api, count_consumer
from ..schemas import SearchResponse, error_responses
from ..store import SearchFilters, StoreUnavailable

router = APIRouter(prefix="/api/v1", tags=["search"], dependencies=[Depends(count_consumer)])

MAX_LIMIT = 100
FilterValue = Annotated[str | None, Query(min_length=1, max_length=255)]


def cache_key(query: str, limit: int, filters: SearchFilters) -> str:
    raw = json.dumps([query, limit, filters.key()], ensure_ascii=False)
    return "search:" + hashlib.sha256(raw.encode()).hexdigest()


@router.get(
    "/search",
    summary="Semantic search over every stored document chunk and table row",
    responses=error_responses(422, 503),
)
async def search(
    api: Api,
    response: Response,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="What to look for.")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most hits returned.")] = 10,
    document_id: FilterValue = None,
    source: FilterValue = None,
    kind: FilterValue = None,
    sheet: FilterValue = None,
) -> SearchResponse:
    query = " ".join(q.split())
    if not query:
        raise HTTPException(status_code=422, detail="q must not be blank")
    filters = SearchFilters(document_id=document_id, source=source, kind=kind, sheet=sheet)

    async def run() -> dict[str, Any]:
        hits = await api.store.search(query, limit=limit, filters=filters)
        return {"results": hits}

    try:
        found, status = await api.ctx.cache.lookup(
            cache_key(query, limit, filters),
            run,
            ttl=api.settings.cache_response_ttl_seconds,
            tags=[SEARCH_TAG],
        )
    except StoreUnavailable as exc:
        raise HTTPException(status_code=503, detail=f"search backend unavailable: {exc}") from exc
    api.metrics.searches.labels(status).inc()
    response.headers["X-Cache"] = status
    return SearchResponse.model_validate(
        {
            "query": query,
            "limit": limit,
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

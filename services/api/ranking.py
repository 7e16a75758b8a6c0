"""How a search is answered: candidates, their order, the relevance floor.

alpha = 1 (the default): candidates are the vector index's nearest `limit * overfetch`
objects plus, on an approximate index (hnsw, dynamic) and unless switched off, BM25's best
`limit * overfetch` keyword matches. The
keyword-only candidates get their exact cosine distance from a second vector query
restricted to their ids (brute force over an allow-list), so every candidate is ranked by
exact cosine similarity. Over-fetching widens the approximate index's search; the keyword
arm finds what it still misses when the query shares words with the text (an index over
many near-identical vectors is where that happens).

alpha < 1: Weaviate's hybrid search (relative score fusion: alpha * vector + (1 - alpha) *
BM25, each normalised to [0, 1]) orders the candidates; cosine similarity is still looked
up for each, for the floor and the response.

Either way: hits below `min_score` cosine similarity are dropped (an unrelated query
answers nothing rather than filler), Weaviate's per-array pre-filter is checked exactly
against each hit's references, and at most `limit` hits are returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .settings import ApiSettings
from .store import SearchFilters, StoredObject, WeaviateStore

# A text held by thousands of documents would make every hit of it huge: the first ones
# are listed, `documents` counts them all.
MAX_REFERENCES_SHOWN = 20


@dataclass(frozen=True)
class SearchRequest:
    query: str
    limit: int
    alpha: float
    min_score: float
    filters: SearchFilters

    def key(self) -> list[Any]:
        return [self.query, self.limit, self.alpha, self.min_score, self.filters.key()]


@dataclass(frozen=True)
class Ranking:
    overfetch: int
    keyword_candidates: bool

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Ranking:
        # A flat index compares every vector: nothing for the keyword arm to rescue.
        rescue = settings.search_keyword_candidates and settings.index_type != "flat"
        return cls(overfetch=settings.search_overfetch, keyword_candidates=rescue)


def by_similarity(candidates: Sequence[StoredObject]) -> list[StoredObject]:
    """Highest cosine similarity first; ties by id so equal scores keep a stable order."""
    scored = [c for c in candidates if c.similarity is not None]
    return sorted(scored, key=lambda c: (-(c.similarity or 0.0), c.id))


async def _rescore(
    store: WeaviateStore,
    request: SearchRequest,
    vector: Sequence[float] | None,
    objects: Sequence[StoredObject],
) -> dict[str, float]:
    """Exact cosine distances of `objects` to the query."""
    if not objects:
        return {}
    found = await store.near(
        request.query,
        vector,
        limit=len(objects),
        filters=request.filters.as_filter(),
        ids=[o.id for o in objects],
    )
    return {o.id: float(o.distance) for o in found if o.distance is not None}


async def candidates(
    store: WeaviateStore,
    request: SearchRequest,
    vector: Sequence[float] | None,
    ranking: Ranking,
) -> list[StoredObject]:
    """Ranked candidates (before the floor and the exact filter check)."""
    fetch = request.limit * ranking.overfetch
    where = request.filters.as_filter()
    if request.alpha < 1.0:
        fused = await store.hybrid(
            request.query, vector, alpha=request.alpha, limit=fetch, filters=where
        )
        distances = await _rescore(store, request, vector, fused)
        for obj in fused:
            obj.distance = distances.get(obj.id)
        return [o for o in fused if o.distance is not None]
    nearest = await store.near(request.query, vector, limit=fetch, filters=where)
    if not ranking.keyword_candidates:
        return by_similarity(nearest)
    seen = {o.id for o in nearest}
    lexical = [
        o
        for o in await store.keyword(request.query, limit=fetch, filters=where)
        if o.id not in seen
    ]
    distances = await _rescore(store, request, vector, lexical)
    for obj in lexical:
        obj.distance = distances.get(obj.id)
    return by_similarity([*nearest, *lexical])


def hits(request: SearchRequest, ranked: Sequence[StoredObject]) -> list[dict[str, Any]]:
    """Response hits: floor, exact filter check, limit."""
    out: list[dict[str, Any]] = []
    for obj in ranked:
        similarity = obj.similarity
        if similarity is None or similarity < request.min_score:
            continue
        matching = request.filters.matching(obj.refs)
        if not matching:
            continue
        out.append(hit(obj, matching, request.filters.sheet))
        if len(out) == request.limit:
            break
    return out


def hit(obj: StoredObject, matching: Sequence[Any], sheet: str | None) -> dict[str, Any]:
    first = matching[0]
    where = first.first_row(sheet) or ("", None)
    return {
        "id": obj.id,
        "document_id": first.document_id,
        "source": first.source,
        "kind": first.kind,
        "sheet": where[0] or None,
        "row": where[1],
        "text": obj.text,
        "fields": obj.decoded_fields(),
        "distance": obj.distance,
        "score": obj.similarity,
        "hybrid_score": obj.fused,
        "references": [r.as_dict() for r in obj.refs[:MAX_REFERENCES_SHOWN]],
        "documents": len(obj.refs),
    }


async def search(
    store: WeaviateStore,
    request: SearchRequest,
    vector: Sequence[float] | None,
    ranking: Ranking,
) -> list[dict[str, Any]]:
    ranked = await candidates(store, request, vector, ranking)
    return hits(request, ranked)

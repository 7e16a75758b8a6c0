"""The vector index settings of the records collection, built from the API settings (pure).

Cosine distance throughout: the model's vectors are unit length, and the API reports
`1 - distance` as the similarity. `flatSearchCutoff` stays at Weaviate's default (40,000):
below it a filtered search (including the id-filtered rescoring query of `ranking.py`)
compares every allowed vector, exactly.
"""

from __future__ import annotations

from typing import Any

from weaviate.classes.config import Configure, VectorDistances

from .settings import ApiSettings


def _hnsw(settings: ApiSettings) -> Any:
    return Configure.VectorIndex.hnsw(
        distance_metric=VectorDistances.COSINE,
        ef=settings.index_ef,
        ef_construction=settings.index_ef_construction,
        max_connections=settings.index_max_connections,
    )


def vector_index(settings: ApiSettings) -> Any:
    """`vector_index_config` for the collection's vector."""
    if settings.index_type == "flat":
        return Configure.VectorIndex.flat(distance_metric=VectorDistances.COSINE)
    if settings.index_type == "dynamic":
        return Configure.VectorIndex.dynamic(
            distance_metric=VectorDistances.COSINE,
            threshold=settings.index_dynamic_threshold,
            hnsw=_hnsw(settings),
            flat=Configure.VectorIndex.flat(distance_metric=VectorDistances.COSINE),
        )
    return _hnsw(settings)

"""The vector index settings of the records collection, built from the API settings (pure).

Cosine distance throughout: the model's vectors are unit length, and the API reports
`1 - distance` as the similarity. `flatSearchCutoff` stays at Weaviate's default (40,000):
below it a filtered search (including the id-filtered rescoring query of `ranking.py`)
compares every allowed vector, exactly.

Replication: `weaviate_replication_factor` copies per object; the store reads and writes
with consistency level QUORUM (a majority of the copies), so with three copies one node
can be down and every query still answers from two that agree.
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


def replication(settings: ApiSettings) -> Any:
    """`replication_config`: copies of each object on distinct Weaviate nodes.

    With more than one copy, asynchronous replication is on: a node that was down while
    writes went on compares and repairs its copies in the background once it is back
    (without it, only a read that sees differing copies repairs them).
    """
    factor = settings.weaviate_replication_factor
    # The client marks async_enabled deprecated: from Weaviate 1.38 the server turns it on
    # for every factor > 1 by itself; 1.35 (deployed and tested) still needs it asked for.
    return Configure.replication(factor=factor, async_enabled=factor > 1)


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

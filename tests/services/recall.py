"""Recall against exact search: brute-force cosine over the stored vectors vs the API.

`ExactIndex` reads every object of a collection with its vector straight from Weaviate
(what is really stored, not what we think we wrote) and ranks them by cosine similarity
to a query vector from the ML service, the same model the API and Weaviate use.

Ties are common in adversarial corpora (near-duplicates score within 1e-6 of each other),
so a returned hit counts as correct when its exact similarity reaches the k-th best
exact similarity (minus a float32 tolerance), whichever of the tied objects it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import weaviate

TOLERANCE = 1e-4


def embed(ml_url: str, texts: Sequence[str]) -> np.ndarray:
    response = httpx.post(
        f"{ml_url}/api/v1/ml/embeddings", json={"texts": list(texts)}, timeout=120
    )
    response.raise_for_status()
    return np.asarray(response.json()["embeddings"], dtype=np.float64)


def _vector(raw: Any) -> list[float]:
    return list(raw["default"] if isinstance(raw, dict) else raw)


@dataclass
class ExactIndex:
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray  # one unit row per object

    @classmethod
    def read(cls, weaviate_url: str, grpc_port: int, collection: str) -> ExactIndex:
        host_port = weaviate_url.rsplit(":", 1)
        client = weaviate.connect_to_custom(
            http_host=host_port[0].split("//")[1], http_port=int(host_port[1]),
            http_secure=False, grpc_host="127.0.0.1", grpc_port=grpc_port, grpc_secure=False,
            skip_init_checks=True,
        )  # fmt: skip
        try:
            ids, texts, rows = [], [], []
            for obj in client.collections.get(collection).iterator(include_vector=True):
                ids.append(str(obj.uuid))
                texts.append(str(obj.properties["text"]))
                rows.append(_vector(obj.vector))
        finally:
            client.close()
        if not rows:
            return cls([], [], np.zeros((0, 0)))
        vectors = np.asarray(rows, dtype=np.float64)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return cls(ids, texts, vectors)

    def similarities(self, query_vector: np.ndarray) -> dict[str, float]:
        q = query_vector / np.linalg.norm(query_vector)
        return dict(zip(self.ids, (self.vectors @ q).tolist(), strict=True))


@dataclass(frozen=True)
class Agreement:
    recall: float  # share of the API's top k that belong to the exact top k
    top1: bool  # the API's first hit is (tied with) the exact best


def agreement(api_ids: Sequence[str], sims: dict[str, float], *, k: int) -> Agreement:
    exact = sorted(sims.values(), reverse=True)
    want = min(k, len(exact))
    if want == 0:
        return Agreement(1.0, True)
    kth = exact[want - 1]
    good = sum(1 for i in api_ids[:k] if sims.get(i, -2.0) >= kth - TOLERANCE)
    top1 = bool(api_ids) and sims.get(api_ids[0], -2.0) >= exact[0] - TOLERANCE
    return Agreement(good / want, top1)

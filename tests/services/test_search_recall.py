"""Recall is measured: the API's top 5 against exact search over what Weaviate stores.

One API (own collection) per corpus and index type, each loaded once for the module
through a real CSV upload (Excel-free path: API -> ML service -> Weaviate). For every
query, the exact top 5 comes from brute-force cosine over all stored vectors
(`recall.ExactIndex`); the API runs with its default ranking and no relevance floor, on the
default flat index and on hnsw (where over-fetching and the keyword arm must make up for
the approximate index). The catalog queries also check relevance: the product a person
would expect comes first.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest

from indexforge_services.common.identity import normalise_text
from tests.stack.weaviate import WeaviateProcess

from .conftest import ApiFactory, ServerThread, wait_job
from .corpora import FILLERS, Corpus, corpus
from .recall import ExactIndex, agreement, embed

FILLER_ROWS = 240  # per corpus; with the catalog, ~250 rows
K = 5
INDEX_TYPES = ["flat", "hnsw"]


@dataclass
class Loaded:
    corpus: Corpus
    server: ServerThread
    client: httpx.Client
    job: dict[str, object]

    @property
    def collection(self) -> str:
        return str(self.server.app.state.api_service.settings.weaviate_collection)


@pytest.fixture(scope="module")
def loaded(make_api: ApiFactory) -> Iterator[dict[tuple[str, str], Loaded]]:
    with ExitStack() as stack:
        pending = []
        for index_type, name in ((i, n) for i in INDEX_TYPES for n in FILLERS):
            c = corpus(name, FILLER_ROWS)
            server = stack.enter_context(make_api(index_type=index_type))
            client = stack.enter_context(httpx.Client(base_url=server.url, timeout=120))
            accepted = client.post(
                "/api/v1/documents", files={"file": (f"{name}.csv", c.csv_bytes(), "text/csv")}
            )
            assert accepted.status_code == 202, accepted.text[:300]
            pending.append((index_type, c, server, client, accepted.json()["job_id"]))
        out = {}
        for index_type, c, server, client, job_id in pending:
            job = wait_job(client, job_id, timeout=600)
            assert job["status"] == "completed", job
            out[index_type, c.name] = Loaded(c, server, client, job)
        yield out


@pytest.mark.parametrize("index_type", INDEX_TYPES)
@pytest.mark.parametrize("name", list(FILLERS))
def test_api_top5_agrees_with_exact_search(
    name: str,
    index_type: str,
    loaded: dict[tuple[str, str], Loaded],
    ml_server: ServerThread,
    weaviate_server: WeaviateProcess,
) -> None:
    setup = loaded[index_type, name]
    index = ExactIndex.read(weaviate_server.url, weaviate_server.ports.grpc, setup.collection)
    queries = setup.corpus.queries()
    vectors = embed(ml_server.url, [q for q, _ in queries])
    outcomes, answered, report = [], 0, []
    for (query, expected), vector in zip(queries, vectors, strict=True):
        response = setup.client.get(
            "/api/v1/search", params={"q": query, "limit": K, "min_score": -1}
        )
        assert response.status_code == 200, response.text[:300]
        hits = response.json()["results"]
        sims = index.similarities(vector)
        for h in hits:  # the reported score is the exact cosine similarity
            assert h["score"] == pytest.approx(sims[h["id"]], abs=1e-3), (query, h)
        outcome = agreement([h["id"] for h in hits], sims, k=K)
        outcomes.append(outcome)
        top = hits[0]["fields"].get("name") if hits else None
        answered += expected is not None and top == expected
        report.append(f"{query!r}: recall {outcome.recall:.2f} top1 {outcome.top1} got {top!r}")
    recall = statistics.mean(o.recall for o in outcomes)
    top1 = statistics.mean(o.top1 for o in outcomes)
    detail = "\n".join(report)
    what = f"{name} on {index_type}"
    assert recall >= 0.95, f"{what}: recall@5 {recall:.3f}\n{detail}"
    assert top1 >= 0.95, f"{what}: top-1 agreement {top1:.3f}\n{detail}"
    catalog = sum(1 for _, expected in queries if expected is not None)
    assert answered >= catalog - 1, f"{what}: {answered}/{catalog} expected first\n{detail}"


def test_each_distinct_text_is_stored_once(
    loaded: dict[tuple[str, str], Loaded], weaviate_server: WeaviateProcess
) -> None:
    for name, setup in loaded.items():
        rows = setup.corpus.rows
        distinct = {normalise_text(f"name: {a}; description: {b}") for a, b in rows}
        index = ExactIndex.read(weaviate_server.url, weaviate_server.ports.grpc, setup.collection)
        assert (setup.job["records"], setup.job["written"]) == (len(rows), len(rows)), name
        assert setup.job["added"] == len(index.ids) == len(distinct), name

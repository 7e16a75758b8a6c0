"""Search benchmark: recall@5 against exact search and latency, per corpus, index and ranking.

    python -m tests.bench.bench_search [--filler 1500] [--rounds 3] [--corpora a,b]

Starts a real `weaviate-server` and the ML service (real model) on loopback. For each index
choice (HNSW with efConstruction 256 and Weaviate's own ef sizing, the same with a fixed ef
of 512 (the API's hnsw defaults), flat (the API's default index)) every corpus of
`tests/services/corpora.py` (twelve catalog rows in `filler` adversarial rows) is written
through the API's own dedup writer into its own collection; a baseline stores one object
per row, as the API did before issue 16. Then every ranking choice
answers every query of the corpus, `rounds` times:

- ann:          the vector index's top 5 only (what the API did before issue 16);
- ann x4:       top 20 from the index, best 5 kept (over-fetch: a wider index search);
- ann x4 + kw:  plus BM25's top 20, all ranked by exact cosine (the API default on hnsw;
                on flat the API skips the keyword arm: "ann x4" is its default there);
- hybrid 0.75 / hybrid 0.5: Weaviate hybrid fusion at that alpha (over-fetch x4).

recall@5 and top-1 agreement are against brute-force cosine over the stored vectors
(`tests/services/recall.py`); answer@1 is the share of catalog queries whose expected
product comes first. Latency is the ranking call alone (Weaviate round trips included,
query embedding excluded: it is the same for every choice). One table, one JSON line.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weaviate.classes.data import DataObject

from indexforge_services.api.content import ContentWriter
from indexforge_services.api.ranking import Ranking, SearchRequest, search
from indexforge_services.api.refs import Reference
from indexforge_services.api.settings import ApiSettings
from indexforge_services.api.store import SearchFilters, WeaviateStore, content_properties
from indexforge_services.api.uploads import csv_records
from indexforge_services.common.tabular import Record
from tests.bench.bench_ml import percentile
from tests.bench.services import running_service
from tests.services.corpora import FILLERS, Corpus, corpus
from tests.services.recall import ExactIndex, agreement, embed
from tests.stack.weaviate import WeaviateProcess

K = 5
# "per-row" stores one object per row (no dedup), the layout before issue 16, on Weaviate's
# HNSW defaults: the baseline the other choices are compared with.
PER_ROW = "per-row, hnsw defaults"
INDEXES: dict[str, dict[str, Any]] = {
    PER_ROW: {
        "index_type": "hnsw",
        "index_ef": -1,
        "index_ef_construction": 128,
        "index_max_connections": 32,
    },
    "hnsw efC256": {"index_type": "hnsw", "index_ef": -1},
    "hnsw efC256 ef512": {"index_type": "hnsw", "index_ef": 512},  # the API's hnsw defaults
    "flat (API default)": {"index_type": "flat"},
}
RANKINGS: dict[str, tuple[float, Ranking]] = {
    "ann": (1.0, Ranking(overfetch=1, keyword_candidates=False)),
    "ann x4": (1.0, Ranking(overfetch=4, keyword_candidates=False)),
    "ann x4 + kw": (1.0, Ranking(overfetch=4, keyword_candidates=True)),
    "hybrid 0.75": (0.75, Ranking(overfetch=4, keyword_candidates=True)),
    "hybrid 0.5": (0.5, Ranking(overfetch=4, keyword_candidates=True)),
}


@dataclass
class Row:
    corpus: str
    index: str
    ranking: str
    objects: int
    recall: float
    top1: float
    answer: float
    p50_ms: float
    p99_ms: float


class Embedder:
    """ML-service embeddings, memoised: every index choice stores the same vectors."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.memo: dict[str, list[float]] = {}

    async def __call__(self, texts: Any) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.memo]
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            vectors = await asyncio.to_thread(embed, self.url, chunk)
            self.memo.update(zip(chunk, vectors.tolist(), strict=True))
        return [self.memo[t] for t in texts]


def settings(weaviate: WeaviateProcess, collection: str, index: dict[str, Any]) -> ApiSettings:
    return ApiSettings(
        weaviate_url=weaviate.url, weaviate_grpc_port=weaviate.ports.grpc,
        weaviate_collection=collection, redis_url=None, otlp_endpoint=None, sentry_dsn=None,
        **index,
    )  # fmt: skip


async def load_per_row(store: WeaviateStore, records: list[Record], embedder: Embedder) -> None:
    for start in range(0, len(records), 100):
        batch = records[start : start + 100]
        vectors = await embedder([r.text for r in batch])
        await store.upsert(
            [
                DataObject(
                    uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{r.sheet}/{r.row}")),
                    properties=content_properties(
                        text=r.text,
                        fields=json.dumps(r.fields),
                        references=[Reference("bench", "b.csv", "csv", ((r.sheet, r.row, r.row),))],
                    ),
                    vector=v,
                )
                for r, v in zip(batch, vectors, strict=True)
            ]
        )


async def load(store: WeaviateStore, c: Corpus, embedder: Embedder, *, per_row: bool) -> None:
    records = csv_records(c.csv_bytes().decode(), store.settings)
    if per_row:
        await load_per_row(store, records, embedder)
        return
    writer = ContentWriter(store)
    for start in range(0, len(records), 100):
        await writer.write(
            document_id="bench", source=f"{c.name}.csv", kind="csv",
            records=records[start : start + 100], embed=embedder,
        )  # fmt: skip


async def measure(
    store: WeaviateStore, c: Corpus, exact: ExactIndex, qvecs: list[list[float]], rounds: int
) -> dict[str, tuple[float, float, float, float, float]]:
    import numpy as np

    out = {}
    queries = c.queries()
    for name, (alpha, ranking) in RANKINGS.items():
        times: list[float] = []
        recalls, top1s, answers = [], [], []
        for (query, expected), vector in zip(queries, qvecs, strict=True):
            request = SearchRequest(query, K, alpha, -1.0, SearchFilters())
            for _ in range(rounds):
                started = time.perf_counter()
                hits = await search(store, request, vector, ranking)
                times.append(time.perf_counter() - started)
            sims = exact.similarities(np.asarray(vector))
            outcome = agreement([h["id"] for h in hits], sims, k=K)
            recalls.append(outcome.recall)
            top1s.append(outcome.top1)
            if expected is not None:
                answers.append(bool(hits) and hits[0]["fields"].get("name") == expected)
        out[name] = (
            statistics.mean(recalls),
            statistics.mean(top1s),
            statistics.mean(answers),
            percentile(times, 50) * 1000,
            percentile(times, 99) * 1000,
        )
    return out


async def run(
    weaviate: WeaviateProcess, ml_url: str, corpora: list[Corpus], rounds: int
) -> list[Row]:
    embedder = Embedder(ml_url)
    rows: list[Row] = []
    for index_name, index in INDEXES.items():
        for c in corpora:
            slug = "".join(ch for ch in index_name if ch.isalnum())
            collection = f"Bench{slug}{c.name.replace('_', '')}"
            store = WeaviateStore(settings(weaviate, collection, index))
            try:
                await load(store, c, embedder, per_row=index_name == PER_ROW)
                exact = await asyncio.to_thread(
                    ExactIndex.read, weaviate.url, weaviate.ports.grpc, collection
                )
                qvecs = await embedder([q for q, _ in c.queries()])
                for name, figures in (await measure(store, c, exact, qvecs, rounds)).items():
                    rows.append(Row(c.name, index_name, name, len(exact.ids), *figures))
            finally:
                await store.close()
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--filler", type=int, default=1500, help="adversarial rows per corpus")
    parser.add_argument("--rounds", type=int, default=3, help="times each query is timed")
    parser.add_argument("--corpora", default=",".join(FILLERS), help="comma-separated names")
    args = parser.parse_args(argv)
    corpora = [corpus(name, args.filler) for name in args.corpora.split(",")]
    ml_env = {"INDEXFORGE_TORCH_THREADS": "1", "INDEXFORGE_LOG_LEVEL": "WARNING"}
    with (
        tempfile.TemporaryDirectory(prefix="indexforge-bench-search-") as tmp,
        running_service(
            "ml", ml_env, ready_path="/.well-known/ready", ready_status=204, timeout=180
        ) as ml_url,
    ):
        weaviate = WeaviateProcess(Path(tmp) / "weaviate", ml_url)
        weaviate.start()
        try:
            started = time.monotonic()
            rows = asyncio.run(run(weaviate, ml_url, corpora, args.rounds))
            took = time.monotonic() - started
        finally:
            weaviate.stop()
    print(
        f"{len(corpora)} corpora x {args.filler} filler rows (+12 catalog), {args.rounds} "
        f"rounds, k={K}; {took:.0f}s; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    header = f"{'corpus':<17} {'index':<22} {'ranking':<12} {'objects':>7} "
    print(header + "recall@5  top1  answer@1  p50 ms  p99 ms")
    for r in rows:
        print(
            f"{r.corpus:<17} {r.index:<22} {r.ranking:<12} {r.objects:>7} "
            f"{r.recall:8.3f} {r.top1:5.2f} {r.answer:9.2f} {r.p50_ms:7.1f} {r.p99_ms:7.1f}"
        )
    figures = [
        {**r.__dict__, "p50_ms": round(r.p50_ms, 2), "p99_ms": round(r.p99_ms, 2)} for r in rows
    ]
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()

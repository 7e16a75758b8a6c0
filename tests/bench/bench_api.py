"""API benchmark: search latency with a cache hit vs a miss; cache hit vs a raw Redis GET.

    python -m tests.bench.bench_api [--documents 300] [--queries 100]

Brings up the whole service stack (`tests.stack`: two Redis, ML, Weaviate, Excel, API) in a
temporary directory, ingests a CSV of `documents` product rows through the API, then:

- search, miss: `queries` distinct queries, each sent once (Weaviate nearText, the query
  vectorized by the ML service through Weaviate's module), one client, sequential;
- search, hit: the same queries again (answered from the app Redis);
- both `search_rounds` times, interleaved (miss then hit, new queries each round): p50/p99
  per round, reported as median (min..max) over the rounds (tests/bench/spread.py);
- cache hit vs raw GET, in this process against the stack's app Redis: `Cache.lookup` of a
  stored search answer (GET + msgpack decode + freshness check) vs `redis.asyncio` GET of the
  same stored bytes, `rounds` times each, interleaved.

Prints a table and one JSON line; stops every process it started. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from indexforge_services.common.cache import Cache, CacheMetrics
from tests.bench.bench_ml import percentile
from tests.bench.spread import Spread
from tests.bench.spread import ratio as median_ratio
from tests.stack import launcher

COLOURS = ("red", "blue", "grey", "green", "white")
THINGS = [
    ("kettle", "boils water for tea"), ("fridge", "keeps food and drinks cold"),
    ("toaster", "browns slices of bread"), ("desk lamp", "lights a work desk"),
    ("space heater", "warms a small room"), ("blender", "makes smoothies"),
    ("vacuum cleaner", "picks up dust"), ("fan", "moves air on hot days"),
    ("rice cooker", "cooks rice"), ("coffee grinder", "grinds beans"),
]  # fmt: skip
QUESTIONS = [
    "something to keep drinks cold", "a way to make tea", "I need more light at my desk",
    "heating for a cold room", "making breakfast toast", "cleaning the carpet",
    "a machine for fruit smoothies", "keeping cool in summer", "cooking grains", "fresh coffee",
]  # fmt: skip


def corpus(count: int) -> bytes:
    lines = ["name,description,colour,price"]
    for i in range(count):
        name, what = THINGS[i % len(THINGS)]
        lines.append(f"{name} {i},{what} - model {i},{COLOURS[i % 5]},{10 + i % 90}")
    return ("\n".join(lines) + "\n").encode()


def queries(count: int) -> list[str]:
    return [f"{QUESTIONS[i % len(QUESTIONS)]} ({COLOURS[i % 5]} {i})" for i in range(count)]


def timed_searches(client: httpx.Client, qs: list[str], expect: str) -> list[float]:
    out: list[float] = []
    for q in qs:
        start = time.perf_counter()
        response = client.get("/api/v1/search", params={"q": q, "limit": 10})
        out.append(time.perf_counter() - start)
        response.raise_for_status()
        assert response.headers["X-Cache"] == expect, (q, response.headers["X-Cache"])
    return out


async def cache_vs_raw(redis_url: str, payload: dict[str, Any], rounds: int) -> dict[str, float]:
    redis = Redis.from_url(redis_url)
    cache = Cache(redis, metrics=CacheMetrics(CollectorRegistry(), "bench"), namespace="bench")
    await cache.set("payload", payload, ttl=600)
    raw_key = cache.value_key("payload")

    async def never() -> dict[str, Any]:
        raise AssertionError("the benchmark entry must be a hit")

    hit: list[float] = []
    raw: list[float] = []
    for _ in range(50):  # warm-up: connection, code paths
        await cache.lookup("payload", never)
        await redis.get(raw_key)
    for _ in range(rounds):
        start = time.perf_counter()
        value, status = await cache.lookup("payload", never)
        hit.append(time.perf_counter() - start)
        start = time.perf_counter()
        blob = await redis.get(raw_key)
        raw.append(time.perf_counter() - start)
        assert status == "hit" and value == payload and blob
    await cache.close()
    return {
        "payload_bytes": len(blob or b""),
        "cache_hit_p50_us": percentile(hit, 50) * 1e6,
        "raw_get_p50_us": percentile(raw, 50) * 1e6,
        "cache_hit_mean_us": statistics.mean(hit) * 1e6,
        "raw_get_mean_us": statistics.mean(raw) * 1e6,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=300, help="CSV rows ingested")
    parser.add_argument("--queries", type=int, default=40, help="distinct queries per round")
    parser.add_argument("--search-rounds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2000, help="cache vs raw GET rounds")
    args = parser.parse_args(argv)
    os.environ.setdefault("INDEXFORGE_TORCH_THREADS", "1")

    with tempfile.TemporaryDirectory(prefix="indexforge-bench-api-") as tmp:
        state = Path(tmp)
        try:
            started = time.monotonic()
            api = launcher.up(state)
            stack_s = time.monotonic() - started
            urls = launcher.read_state(state)["urls"]
            with httpx.Client(base_url=api, timeout=300) as client:
                started = time.monotonic()
                accepted = client.post(
                    "/api/v1/documents", files={"file": ("bench.csv", corpus(args.documents))}
                )
                accepted.raise_for_status()
                job_url = accepted.json()["status_url"]
                while (job := client.get(job_url).json())["status"] not in ("completed", "failed"):
                    time.sleep(0.2)
                assert job["status"] == "completed", job
                ingest_s = time.monotonic() - started
                every = queries(args.queries * args.search_rounds)
                timed_searches(client, ["warm-up query"], "miss")
                lat: dict[str, Spread] = {
                    k: Spread() for k in ("miss50", "miss99", "hit50", "hit99")
                }
                for r in range(args.search_rounds):
                    qs = every[r * args.queries : (r + 1) * args.queries]
                    for kind in ("miss", "hit"):
                        took = timed_searches(client, qs, kind)
                        lat[f"{kind}50"].values.append(percentile(took, 50) * 1000)
                        lat[f"{kind}99"].values.append(percentile(took, 99) * 1000)
                sample = client.get("/api/v1/search", params={"q": qs[0], "limit": 10}).json()
            payload = {"results": sample["results"]}
            raw = asyncio.run(cache_vs_raw(f"{urls['redis_app']}/2", payload, args.rounds))
        finally:
            launcher.down(state)

    figures = {
        "documents": args.documents,
        "stack_up_s": round(stack_s, 1),
        "ingest_rows_per_s": round(args.documents / ingest_s, 1),
        "search_miss_p50_ms": lat["miss50"].as_dict(2),
        "search_miss_p99_ms": lat["miss99"].as_dict(2),
        "search_hit_p50_ms": lat["hit50"].as_dict(2),
        "search_hit_p99_ms": lat["hit99"].as_dict(2),
        "miss_vs_hit_p50": round(median_ratio(lat["miss50"], lat["hit50"]), 1),
        "cache_payload_bytes": raw["payload_bytes"],
        "cache_hit_p50_us": round(raw["cache_hit_p50_us"], 1),
        "raw_redis_get_p50_us": round(raw["raw_get_p50_us"], 1),
        "cache_hit_vs_raw_get_ratio": round(raw["cache_hit_p50_us"] / raw["raw_get_p50_us"], 2),
    }
    print(
        f"{args.documents} rows ingested in {ingest_s:.1f}s; {args.search_rounds} rounds of "
        f"{args.queries} queries (median (min..max) of the per-round figures); "
        f"ML torch threads {os.environ['INDEXFORGE_TORCH_THREADS']}; "
        f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    for kind in ("miss", "hit"):
        print(f"{'search, cache ' + kind:<28} p50 ms {lat[kind + '50'].cell()}  "
              f"p99 ms {lat[kind + '99'].cell()}")  # fmt: skip
    print(f"miss/hit p50 x{figures['miss_vs_hit_p50']}")
    ratio = figures["cache_hit_vs_raw_get_ratio"]
    print(f"{'cache hit (lookup)':<28} p50 {figures['cache_hit_p50_us']:8.1f} us  "
          f"vs raw Redis GET {figures['raw_redis_get_p50_us']:.1f} us "
          f"(x{ratio:.2f}, {raw['payload_bytes']} B payload)")  # fmt: skip
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()

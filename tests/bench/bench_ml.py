"""ML service benchmark: HTTP with micro-batching vs the same model in-process.

    python -m tests.bench.bench_ml [--requests 512] [--concurrency 32] [--threads 1]

Runs the real service (`python -m indexforge_services.ml.main`) as a child process on a free
loopback port, twice: with micro-batching, then with one request per forward pass
(batch size 1). The client sends one text per request from `concurrency` workers. The
in-process figure encodes the same texts in batches of the same size, in this process, with
the same torch thread count. No Redis: every request is a real forward pass.
Prints a table and one JSON line. Not collected by pytest (no test_ functions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

import httpx

from tests.bench.services import running_service

WORDS = [
    *("index", "search", "vector", "document", "query", "semantic", "cluster", "operator"),
    *("redis", "weaviate", "model", "embedding", "batch", "latency", "throughput", "chart"),
    *("service", "gateway", "metrics", "trace", "excel", "sheet", "row", "column", "tenant"),
    *("upload", "schema", "result", "ranking", "similarity", "nearest", "kubernetes"),
]


def make_texts(count: int) -> list[str]:
    """Deterministic, distinct sentences of 6..40 words (no two share a cache key)."""
    texts = []
    for i in range(count):
        length = 6 + (i * 7) % 35
        words = [WORDS[(i * 13 + j * 5) % len(WORDS)] for j in range(length)]
        texts.append(f"request {i}: " + " ".join(words))
    return texts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Result:
    name: str
    seconds: float
    count: int
    latencies: list[float]
    mean_batch: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def row(self) -> str:
        if self.latencies:
            p50 = percentile(self.latencies, 50) * 1000
            p99 = percentile(self.latencies, 99) * 1000
            lat = f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
        else:
            lat = "(no per-request latency)"
        batch = f"  mean batch {self.mean_batch:5.1f}" if self.mean_batch else ""
        return f"{self.name:<38} {self.rate:8.1f} emb/s  {lat}{batch}"


def in_process(texts: list[str], *, batch: int, threads: int) -> Result:
    from indexforge_services.ml.model import Embedder

    embedder = Embedder.load(torch_threads=threads)
    embedder.encode(texts[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.encode(texts[i : i + batch])
    return Result(f"in-process, batches of {batch}", time.perf_counter() - start, len(texts), [])


def ml_server(*, batch: int, wait_ms: float, threads: int) -> AbstractContextManager[str]:
    """The service as a child process; stopped by its PID."""
    settings = {
        "INDEXFORGE_TORCH_THREADS": str(threads),
        "INDEXFORGE_BATCH_MAX_SIZE": str(batch),
        "INDEXFORGE_BATCH_MAX_WAIT_MS": str(wait_ms),
    }
    return running_service(
        "ml", settings, ready_path="/.well-known/ready", ready_status=204, timeout=180
    )


async def http_load(url: str, texts: list[str], *, concurrency: int, name: str) -> Result:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def worker() -> None:
            while not queue.empty():
                text = queue.get_nowait()
                t0 = time.perf_counter()
                response = await client.post("/vectors", json={"text": text})
                latencies.append(time.perf_counter() - t0)
                response.raise_for_status()
                assert len(response.json()["vector"]) == 384

        # Warm-up: connections open, first forward passes done.
        await asyncio.gather(
            *(client.post("/vectors", json={"text": f"warm {i}"}) for i in range(concurrency))
        )
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        metrics = (await client.get("/metrics")).text
    return Result(name, elapsed, len(texts), latencies, mean_batch_size(metrics))


def mean_batch_size(metrics: str) -> float | None:
    """Texts per forward pass over the whole run (warm-up included), from /metrics."""
    values: dict[str, float] = {}
    for line in metrics.splitlines():
        for suffix in ("sum", "count"):
            if line.startswith(f"ml_batch_size_{suffix}{{"):
                values[suffix] = float(line.rsplit(" ", 1)[1])
    if not values.get("count"):
        return None
    return values["sum"] / values["count"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32, help="max texts per forward pass")
    parser.add_argument("--wait-ms", type=float, default=5.0, help="batch gathering window")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both sides)")
    args = parser.parse_args(argv)

    texts = make_texts(args.requests)
    local = in_process(texts, batch=args.batch, threads=args.threads)
    with ml_server(batch=args.batch, wait_ms=args.wait_ms, threads=args.threads) as url:
        batched = asyncio.run(
            http_load(url, texts, concurrency=args.concurrency,
                      name=f"HTTP, {args.concurrency} clients, micro-batched")
        )  # fmt: skip
    with ml_server(batch=1, wait_ms=0, threads=args.threads) as url:
        single = asyncio.run(
            http_load(url, texts, concurrency=args.concurrency,
                      name=f"HTTP, {args.concurrency} clients, 1 request/forward")
        )  # fmt: skip

    figures = {
        "in_process_emb_per_s": round(local.rate, 1),
        "http_batched_emb_per_s": round(batched.rate, 1),
        "http_unbatched_emb_per_s": round(single.rate, 1),
        "http_vs_in_process_ratio": round(batched.rate / local.rate, 3),
        "batching_gain": round(batched.rate / single.rate, 2),
        "batched_p50_ms": round(percentile(batched.latencies, 50) * 1000, 1),
        "batched_p99_ms": round(percentile(batched.latencies, 99) * 1000, 1),
        "unbatched_p50_ms": round(percentile(single.latencies, 50) * 1000, 1),
        "unbatched_p99_ms": round(percentile(single.latencies, 99) * 1000, 1),
        "batched_mean_batch_size": round(batched.mean_batch or 0, 1),
    }
    print(
        f"{args.requests} texts, {args.concurrency} concurrent clients, "
        f"torch threads {args.threads}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    for result in (local, batched, single):
        print(result.row())
    print(f"HTTP/in-process ratio {figures['http_vs_in_process_ratio']:.2f} (aim >= 0.8); "
          f"batching gain x{figures['batching_gain']:.2f}; "
          f"mean latency {statistics.mean(batched.latencies) * 1000:.1f} ms")  # fmt: skip
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()

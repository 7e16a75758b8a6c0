"""Count-bounded HTTP load, run as its own process by the benchmarks:

    python -m tests.bench.load_client URL PATH BODIES.jsonl --requests N --connections C
        [--offset K]

Posts the pre-encoded JSON bodies (one per line, rotating from `offset`) from `connections`
keep-alive connections until `requests` answers came back; prints one JSON line: requests,
seconds, p50/p99 latency. Responses are checked for status only, not decoded, so the
client costs little CPU on the machine it shares with the service.

Why not wrk or hey: wrk is duration-bounded (its main thread sleeps for -d even when a Lua
script stops the threads), and with multi-second latencies a duration-bounded run drops
the requests still in flight at its end; hey sends one fixed body, and identical texts
share one computation in the service (single flight), which is not real load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx


async def load(url: str, path: str, bodies: list[bytes], *, requests: int, connections: int,
               offset: int) -> dict[str, float]:  # fmt: skip
    latencies: list[float] = []
    next_index = offset
    errors: list[str] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < offset + requests:
                body = bodies[next_index % len(bodies)]
                next_index += 1
                start = time.perf_counter()
                response = await client.post(path, content=body, headers=headers)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, first: {errors[0]}")
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("path")
    parser.add_argument("bodies", type=Path)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args(argv)
    bodies = [line.encode() for line in args.bodies.read_text(encoding="utf-8").splitlines()]
    result = asyncio.run(
        load(args.url, args.path, bodies, requests=args.requests,
             connections=args.connections, offset=args.offset)
    )  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()

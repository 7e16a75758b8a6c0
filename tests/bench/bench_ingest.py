"""Ingestion benchmark: in-process jobs vs the RabbitMQ queue with 1 and 2 workers.

    python -m tests.bench.bench_ingest [--documents 40] [--rows 25]

Brings up the service stack (`tests.stack`: two Redis, ML, Weaviate, Excel) and a private
RabbitMQ node, then for each mode starts its own API process (and worker processes) on its
own Weaviate collection, uploads `documents` CSV files of `rows` distinct rows back to back,
and polls every job until it completed. Reported per mode:

- documents/s: documents / (last job completed - first upload sent);
- p50/p95 end-to-end latency: upload sent -> job `completed` (Weaviate confirmed every
  write, so the rows are searchable: the collection uses the exact flat index).

Every mode embeds through the same ML process (one torch thread), which is what bounds the
throughput on a small machine. Prints a table and one JSON line; stops every process it
started. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.bench.bench_ml import percentile
from tests.services.rabbitmq import RabbitMQNode
from tests.services.service_process import ServiceProcess
from tests.stack import launcher

POLL_S = 0.05


def csv_file(tag: str, rows: int) -> bytes:
    lines = ["name,notes"] + [f"{tag} item {i},row {i} of {tag}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def run_mode(
    name: str, env: dict[str, str], workers: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    collection = f"Bench{uuid.uuid4().hex[:10]}"
    common = {
        **env,
        "INDEXFORGE_WEAVIATE_COLLECTION": collection,
        "INDEXFORGE_CACHE_NAMESPACE": f"bench-{collection.lower()}",
        "INDEXFORGE_QUEUE_PREFIX": f"bench{collection.lower()}",
    }
    started: list[ServiceProcess] = []
    try:
        api = ServiceProcess("api", common, workdir / name / "api")
        (workdir / name / "api").mkdir(parents=True)
        started.append(api.start())
        for n in range(workers):
            folder = workdir / name / f"worker-{n}"
            folder.mkdir(parents=True)
            worker_env = {**common, "INDEXFORGE_INGEST_WORKER": "true"}
            started.append(ServiceProcess("api", worker_env, folder).start())
        sent: dict[str, float] = {}
        done: dict[str, float] = {}
        with httpx.Client(base_url=api.url, timeout=120) as client:
            for d in range(args.documents):
                body = csv_file(f"{name}-{d}-{uuid.uuid4().hex[:6]}", args.rows)
                at = time.monotonic()
                response = client.post(
                    "/api/v1/documents", files={"file": (f"doc-{d}.csv", body, "text/csv")}
                )
                response.raise_for_status()
                sent[response.json()["job_id"]] = at
            deadline = time.monotonic() + 900
            while len(done) < len(sent):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: {len(sent) - len(done)} jobs did not complete")
                for job_id in [j for j in sent if j not in done]:
                    job = client.get(f"/api/v1/jobs/{job_id}").json()
                    if job["status"] == "failed":
                        raise RuntimeError(f"{name}: job failed: {job}")
                    if job["status"] == "completed":
                        done[job_id] = time.monotonic()
                time.sleep(POLL_S)
    finally:
        for process in started:
            process.stop()
    latencies = [done[j] - sent[j] for j in sent]
    span = max(done.values()) - min(sent.values())
    return {
        "mode": name,
        "documents_per_s": round(len(sent) / span, 2),
        "rows_per_s": round(len(sent) * args.rows / span, 1),
        "latency_p50_s": round(percentile(latencies, 50), 2),
        "latency_p95_s": round(percentile(latencies, 95), 2),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=40, help="uploads per mode")
    parser.add_argument("--rows", type=int, default=25, help="distinct rows per document")
    args = parser.parse_args(argv)
    os.environ.setdefault("INDEXFORGE_TORCH_THREADS", "1")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="indexforge-bench-ingest-") as tmp:
        state = Path(tmp)
        broker = RabbitMQNode(state / "rabbitmq")
        try:
            launcher.up(state / "stack")
            urls = launcher.read_state(state / "stack")["urls"]
            broker.start()
            base = {
                "INDEXFORGE_REDIS_URL": f"{urls['redis_app']}/0",
                "INDEXFORGE_WEAVIATE_URL": urls["weaviate"],
                "INDEXFORGE_WEAVIATE_GRPC_PORT": str(urls["weaviate_grpc_port"]),
                "INDEXFORGE_ML_URL": urls["ml"],
                "INDEXFORGE_LOG_LEVEL": "WARNING",
            }
            queue = {**base, "INDEXFORGE_INGEST_MODE": "queue", "INDEXFORGE_AMQP_URL": broker.url}
            results.append(run_mode("inline", base, 0, args, state))
            results.append(run_mode("queue-1-worker", queue, 1, args, state))
            results.append(run_mode("queue-2-workers", queue, 2, args, state))
        finally:
            broker.stop()
            launcher.down(state / "stack")
    print(f"{'mode':<18}{'docs/s':>9}{'rows/s':>9}{'p50 s':>8}{'p95 s':>8}")
    for r in results:
        print(
            f"{r['mode']:<18}{r['documents_per_s']:>9}{r['rows_per_s']:>9}"
            f"{r['latency_p50_s']:>8}{r['latency_p95_s']:>8}"
        )
    print(
        json.dumps(
            {
                "documents": args.documents,
                "rows": args.rows,
                "rabbitmq_start_s": round(broker.start_seconds[0], 1),
                "modes": results,
            }
        )
    )
    return results


if __name__ == "__main__":
    main()

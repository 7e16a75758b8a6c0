"""ML service benchmark: batching policies and backends, in-process vs HTTP, as ratios.

    python -m tests.bench.bench_ml [--rounds 3] [--requests 64] [--threads 2] [--chunk-share 0.25]

Texts (documented, deterministic): a quarter (--chunk-share) are chunks the API's chunker
(`chunk_text`, the API's default `chunk_chars`) cuts from generated prose documents
(paragraphs of 1-12 sentences of 5-30 words; most chunks are near the 1000-character cap,
~200 tokens), the rest are table rows rendered the way the API embeds CSV/Excel rows
(`name: ...; description: ...; price: ...`, ~15-40 tokens): spreadsheets, one text per
row, outnumber documents' chunks in a mixed ingest. The token-length distribution is
printed. Every text is distinct; the services run without Redis, so every text is a real
forward pass.

Modes, all in one run, interleaved round by round (tests/bench/spread.py), figures as
median (min..max) over `rounds`:

- in-process: the model called directly (no HTTP), the same texts in batches of 32 in
  arrival order ("fifo") or planned by the server's bucketing policy ("bucketed"); torch,
  ONNX, ONNX int8, each in a worker process of its own (one model per process, as in the
  service: torch's and ONNX Runtime's thread pools in one process spin against each other);
- HTTP /vectors: one text per request from 32 connections (Weaviate's pattern) until
  --requests answers, the client in its own process (tests/bench/load_client.py:
  pre-encoded distinct bodies, responses not decoded; why not wrk/hey is said there),
  against the service as a child process (one per
  configuration, all started up front; a run waits until the previous one's leftover
  requests are done, so no two modes compute at once): torch with today's FIFO batching
  (INDEXFORGE_BATCH_MAX_TOKENS=0), torch bucketed, ONNX bucketed;
- HTTP API batch path: POST /api/v1/ml/embeddings with 64 texts per request (the API's
  `embed_batch_size`) from 2 connections (two ingestion jobs), 2 answers, torch bucketed.

Threads: torch/ONNX Runtime intra-op threads are set explicitly (--threads, both sides) and
printed with the core count and load. The machine is shared: read the ratios, not the
absolute figures. Prints a table, the ratios against the issue's targets, one JSON line.
Not collected by pytest (no test_ functions).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from indexforge_services.api.chunking import chunk_text
from indexforge_services.api.settings import ApiSettings
from indexforge_services.ml.batching import plan_batches
from tests.bench.services import running_service
from tests.bench.spread import Spread, interleaved, ratio

BATCH = 32
MAX_TOKENS = 4096  # the service default
API_BATCH = int(ApiSettings.model_fields["embed_batch_size"].default)
CHUNK_CHARS = int(ApiSettings.model_fields["chunk_chars"].default)

_VOCABULARY = (
    "the of and to in is that for it as with was on be by this are from at or an which "
    "index search vector document query semantic cluster operator redis weaviate model "
    "embedding batch latency throughput chart service gateway metrics trace excel sheet row "
    "column tenant upload schema result ranking similarity nearest kubernetes customer order "
    "invoice shipment warehouse product price quarter report revenue contract supplier team "
    "meeting project deadline budget review policy security network storage backup"
)
WORDS = _VOCABULARY.split()
NAMES = ["kettle", "fridge", "lamp", "heater", "blender", "boots", "helmet", "grinder"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(5, 30))]
    return " ".join(words).capitalize() + "."


def realistic_texts(count: int, *, chunk_share: float = 0.25, seed: int = 15) -> list[str]:
    """Document chunks as the API cuts them and table rows; shuffled, distinct."""
    rng = random.Random(seed)
    n_chunks = round(count * chunk_share)
    chunks: list[str] = []
    while len(chunks) < n_chunks:
        paragraphs = [
            " ".join(_sentence(rng) for _ in range(rng.randint(1, 12)))
            for _ in range(rng.randint(1, 6))
        ]
        chunks += chunk_text("\n\n".join(paragraphs), size=CHUNK_CHARS)
    rows = [
        f"name: {rng.choice(NAMES)} {i}; description: "
        + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14)))
        + f"; price: {rng.randint(5, 500)}"
        for i in range(count - n_chunks)
    ]
    texts = [f"{i} {t}" for i, t in enumerate(chunks[:n_chunks] + rows)]
    rng.shuffle(texts)
    return texts


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> Any: ...

    def token_lengths(self, texts: Sequence[str]) -> list[int]: ...


def in_process(encoder: Encoder, texts: list[str], *, bucketed: bool) -> Callable[[], float]:
    """Texts/s of encoding `texts` in batches of 32, arrival order or the server's plan."""
    lengths = encoder.token_lengths(texts)
    plan = plan_batches(lengths, max_batch=BATCH, max_tokens=MAX_TOKENS if bucketed else 0)
    batches = [[texts[i] for i in batch] for batch in plan]

    def run() -> float:
        start = time.perf_counter()
        for batch in batches:
            encoder.encode(batch)
        return len(texts) / (time.perf_counter() - start)

    return run


class InProcessWorker:
    """One backend's model in a process of its own, encoding directly (no HTTP): torch's
    and ONNX Runtime's thread pools in one process would spin against each other, and the
    services also hold one model per process. Each call runs one mode, returns texts/s."""

    def __init__(self, backend: str, args: argparse.Namespace) -> None:
        argv = [sys.executable, "-m", "tests.bench.bench_ml", "--worker", backend]
        argv += [f"--threads={args.threads}", f"--texts={args.texts}"]
        argv += [f"--sample={args.sample}", f"--chunk-share={args.chunk_share}"]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        )  # fmt: skip
        if self._reply() != "ready":
            raise RuntimeError(f"in-process worker {backend} did not start")

    def _reply(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"in-process worker exited with {self.proc.wait(timeout=30)}")
        return line

    def mode(self, name: str) -> Callable[[], float]:
        def run() -> float:
            assert self.proc.stdin is not None
            self.proc.stdin.write(f"{name}\n")
            self.proc.stdin.flush()
            return float(self._reply())

        return run

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def worker(backend: str, args: argparse.Namespace) -> None:
    """`--worker BACKEND`: load the model, then answer one texts/s per mode read on stdin."""
    from indexforge_services.ml.model import Embedder
    from indexforge_services.ml.onnx_backend import OnnxEmbedder

    model: Encoder
    if backend == "torch":
        model = Embedder.load(torch_threads=args.threads)
    else:
        quantize = "int8" if backend == "int8" else "none"
        model = OnnxEmbedder.load(threads=args.threads, quantize=quantize)
    sample = realistic_texts(args.texts, chunk_share=args.chunk_share)[: args.sample]
    runs = {"fifo": in_process(model, sample, bucketed=False)}
    runs["bucketed"] = in_process(model, sample, bucketed=True)
    for run in runs.values():
        run()  # warm-up
    print("ready", flush=True)
    for line in sys.stdin:
        print(f"{runs[line.strip()]():.3f}", flush=True)


class HttpMode:
    """One HTTP mode: `tests.bench.load_client` (its own process) posting rotating bodies
    to `url + path` until `requests` answers."""

    def __init__(
        self,
        workdir: Path,
        url: str,
        path: str,
        bodies: list[str],
        *,
        texts_per_request: int,
        connections: int,
        requests: int,
    ) -> None:
        self.url, self.path = url, path
        self.per_request = texts_per_request
        self.connections, self.requests = connections, requests
        self.bodies = workdir / f"bodies-{len(list(workdir.iterdir()))}.jsonl"
        self.bodies.write_text("\n".join(bodies) + "\n", encoding="utf-8")
        self.offset = 0
        self.latency_ms: list[tuple[float, float]] = []  # (p50, p99) per run
        self.batches: list[float] = []  # mean texts per forward pass, per run

    def _load(self, requests: int) -> dict[str, float]:
        argv = [sys.executable, "-m", "tests.bench.load_client", self.url, self.path]
        argv += [str(self.bodies), f"--requests={requests}", f"--connections={self.connections}"]
        out = subprocess.run(
            [*argv, f"--offset={self.offset}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"load client failed on {self.url}{self.path}: {out.stderr[-500:]}")
        self.offset += requests  # the next run continues with unseen bodies
        stats: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        return stats

    def warm_up(self) -> None:
        self._load(self.connections)
        wait_idle(self.url)

    def __call__(self) -> float:
        before = batch_counters(self.url)
        stats = self._load(self.requests)
        after = wait_idle(self.url)
        passes = after[1] - before[1]
        self.batches.append((after[0] - before[0]) / passes if passes else 0.0)
        self.latency_ms.append((stats["p50_ms"], stats["p99_ms"]))
        return stats["requests"] * self.per_request / stats["seconds"]


def batch_counters(url: str) -> tuple[float, float]:
    """(texts, forward passes) so far, from the service's ml_batch_size histogram."""
    values = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        for suffix in values:
            if line.startswith(f"ml_batch_size_{suffix}{{"):
                values[suffix] = float(line.rsplit(" ", 1)[1])
    return values["sum"], values["count"]


def wait_idle(url: str, timeout: float = 120) -> tuple[float, float]:
    """Wait until the service has answered what a run left in flight: requests of closed
    connections still run, and two modes computing at once would measure each other."""
    last = batch_counters(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = batch_counters(url)
        if now == last:
            return now
        last = now
    raise RuntimeError(f"{url} still busy after {timeout:.0f} s")


def ml_settings(*, threads: int, backend: str, max_tokens: int) -> dict[str, str]:
    return {
        "INDEXFORGE_TORCH_THREADS": str(threads),
        "INDEXFORGE_BATCH_MAX_SIZE": str(BATCH),
        "INDEXFORGE_BATCH_MAX_WAIT_MS": "5",
        "INDEXFORGE_BATCH_MAX_TOKENS": str(max_tokens),
        "INDEXFORGE_ML_BACKEND": backend,
        "TOKENIZERS_PARALLELISM": "false",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=64, help="answers per /vectors run")
    parser.add_argument("--texts", type=int, default=4096, help="distinct texts in the pool")
    parser.add_argument("--sample", type=int, default=64, help="texts per in-process run")
    parser.add_argument("--chunk-share", type=float, default=0.25, help="document chunks")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (all modes)")
    parser.add_argument("--worker", choices=["torch", "onnx", "int8"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args)
        return {}

    from transformers import AutoTokenizer

    from indexforge_services.ml.model import packaged_model_dir
    from indexforge_services.ml.onnx_backend import ensure_exported

    for quantize in ("none", "int8"):
        ensure_exported(quantize=quantize)  # once, before anything is timed
    texts = realistic_texts(args.texts, chunk_share=args.chunk_share)
    tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir(), local_files_only=True)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    single = [json.dumps({"text": t}) for t in texts]
    batched = [
        json.dumps({"texts": texts[i : i + API_BATCH]})
        for i in range(0, len(texts) - API_BATCH + 1, API_BATCH)
    ]

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ml-")))
        urls = {
            name: stack.enter_context(
                running_service(
                    "ml",
                    ml_settings(threads=args.threads, backend=backend, max_tokens=tokens),
                    ready_path="/.well-known/ready",
                    ready_status=204,
                    timeout=300,
                )
            )
            for name, backend, tokens in (
                ("torch-fifo", "torch", 0),
                ("torch-bucketed", "torch", MAX_TOKENS),
                ("onnx-bucketed", "onnx", MAX_TOKENS),
            )
        }

        def http(name: str, path: str, bodies: list[str], per: int, conns: int) -> HttpMode:
            return HttpMode(
                workdir, urls[name], path, bodies, texts_per_request=per, connections=conns,
                requests=args.requests if per == 1 else 2,
            )  # fmt: skip

        http_modes = {
            "HTTP /vectors x32, torch, fifo (before)": http(
                "torch-fifo", "/vectors", single, 1, 32
            ),
            "HTTP /vectors x32, torch, bucketed": http("torch-bucketed", "/vectors", single, 1, 32),
            "HTTP /vectors x32, onnx, bucketed": http("onnx-bucketed", "/vectors", single, 1, 32),
            f"HTTP API path {API_BATCH}/req x2, torch, bucketed": http(
                "torch-bucketed", "/api/v1/ml/embeddings", batched, API_BATCH, 2
            ),
        }
        for mode in http_modes.values():
            mode.warm_up()
        workers = {}
        for backend in ("torch", "onnx", "int8"):
            workers[backend] = InProcessWorker(backend, args)
            stack.callback(workers[backend].stop)
        modes: dict[str, Callable[[], float]] = {
            "in-process torch, fifo": workers["torch"].mode("fifo"),
            "in-process torch, bucketed": workers["torch"].mode("bucketed"),
            "in-process onnx, fifo": workers["onnx"].mode("fifo"),
            "in-process onnx, bucketed": workers["onnx"].mode("bucketed"),
            "in-process onnx int8, bucketed": workers["int8"].mode("bucketed"),
            **http_modes,
        }
        results = interleaved(modes, args.rounds)

    report(args, lengths, results, http_modes)
    figures = figures_of(results)
    print(json.dumps(figures))
    return figures


def figures_of(results: dict[str, Spread]) -> dict[str, Any]:
    r = results
    http_fifo = r["HTTP /vectors x32, torch, fifo (before)"]
    http_bucketed = r["HTTP /vectors x32, torch, bucketed"]
    http_onnx = r["HTTP /vectors x32, onnx, bucketed"]
    api_path = r[f"HTTP API path {API_BATCH}/req x2, torch, bucketed"]
    return {
        "texts_per_s": {name: spread.as_dict() for name, spread in r.items()},
        "bucketing_http_gain": ratio(http_bucketed, http_fifo),
        "onnx_vs_torch_in_process_b32": ratio(
            r["in-process onnx, fifo"], r["in-process torch, fifo"]
        ),
        "onnx_vs_torch_http": ratio(http_onnx, http_bucketed),
        "int8_vs_onnx_in_process": ratio(
            r["in-process onnx int8, bucketed"], r["in-process onnx, bucketed"]
        ),
        "http_vs_in_process_torch": ratio(http_bucketed, r["in-process torch, bucketed"]),
        "http_vs_in_process_onnx": ratio(http_onnx, r["in-process onnx, bucketed"]),
        "api_path_vs_in_process_torch": ratio(api_path, r["in-process torch, bucketed"]),
    }  # fmt: skip


def report(
    args: argparse.Namespace,
    lengths: list[int],
    results: dict[str, Spread],
    http_modes: dict[str, HttpMode],
) -> None:
    q = [int(np.percentile(lengths, p)) for p in (10, 50, 90, 99)]
    print(
        f"{len(lengths)} distinct texts, tokens p10/p50/p90/p99/max {q[0]}/{q[1]}/{q[2]}/{q[3]}/"
        f"{max(lengths)}; threads {args.threads}; cpus {os.cpu_count()}; "
        f"load {os.getloadavg()[0]:.1f}; {args.rounds} rounds interleaved; "
        f"{args.requests} answers per /vectors run, {args.sample} texts per in-process run"
    )
    print(f"{'mode':<46} {'texts/s median (min..max)':<28} p50/p99 ms   batch")
    for name, spread in results.items():
        extra = ""
        if name in http_modes:
            mode = http_modes[name]
            p50 = np.median([p for p, _ in mode.latency_ms])
            p99 = np.median([p for _, p in mode.latency_ms])
            extra = f"{p50:6.0f}/{p99:<6.0f} {np.median(mode.batches):5.1f}"
        print(f"{name:<46} {spread.cell():<28} {extra}")
    f = figures_of(results)
    targets = (
        ("bucketing, HTTP, vs today's FIFO", f["bucketing_http_gain"], 1.3),
        ("ONNX vs torch, in-process batch 32", f["onnx_vs_torch_in_process_b32"], 1.5),
        ("HTTP vs in-process, torch", f["http_vs_in_process_torch"], 0.85),
        ("HTTP vs in-process, onnx", f["http_vs_in_process_onnx"], 0.85),
    )
    for label, value, target in targets:
        verdict = "met" if value >= target else "NOT met"
        print(f"{label:<46} x{value:.2f} (target >= {target}: {verdict})")
    print(
        f"{'ONNX vs torch over HTTP':<46} x{f['onnx_vs_torch_http']:.2f}; int8 vs fp32 ONNX "
        f"x{f['int8_vs_onnx_in_process']:.2f}; API path vs in-process torch "
        f"x{f['api_path_vs_in_process_torch']:.2f}"
    )


if __name__ == "__main__":
    main()

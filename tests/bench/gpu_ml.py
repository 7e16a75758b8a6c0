"""GPU readiness: texts/s per batch size and device memory, for a machine with CUDA.

    python -m tests.bench.gpu_ml [--device cuda] [--batches 1,8,32,128,256] [--rounds 5]

Loads the model on the device (torch: the CUDA path keeps torch), encodes the bench's
realistic mix (tests/bench/bench_ml.py) in batches of each size, best/median of `rounds`
after a warm-up, and prints texts/s with the device memory: allocated, peak allocated and
reserved by torch, and free/total as the driver reports them. `--device cpu` runs the same
loop on the CPU (memory: the process's peak RSS) to check the script where no GPU is.
Without CUDA and `--device cuda` it says so and exits 2. Not part of `make bench`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from typing import Any

import torch

from indexforge_services.ml.model import Embedder
from tests.bench.bench_ml import realistic_texts

MIB = 1024 * 1024


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def memory(device: str) -> dict[str, float]:
    if not device.startswith("cuda"):
        return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    free, total = torch.cuda.mem_get_info(device)
    return {
        "allocated_mib": torch.cuda.memory_allocated(device) / MIB,
        "peak_allocated_mib": torch.cuda.max_memory_allocated(device) / MIB,
        "reserved_mib": torch.cuda.memory_reserved(device) / MIB,
        "free_mib": free / MIB,
        "total_mib": total / MIB,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", default="1,8,32,128,256")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts-per-round", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (tokenizer, cpu)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device visible to torch (torch.cuda.is_available() is False): run this "
              "on a GPU machine with the CUDA torch wheel, or pass --device cpu")  # fmt: skip
        sys.exit(2)

    embedder = Embedder.load(device=args.device, torch_threads=args.threads)
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    texts = realistic_texts(args.texts_per_round)
    print(f"device {args.device} ({name}), torch {torch.__version__}, {len(texts)} texts/round")
    rows = []
    for size in (int(b) for b in args.batches.split(",")):
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(args.device)
        embedder.encode(texts[:size])  # warm-up (kernels, allocator)
        rates = []
        for _ in range(args.rounds):
            sync(args.device)
            start = time.perf_counter()
            for i in range(0, len(texts), size):
                embedder.encode(texts[i : i + size])
            sync(args.device)
            rates.append(len(texts) / (time.perf_counter() - start))
        row = {
            "batch": size,
            "texts_per_s_best": round(max(rates), 1),
            "texts_per_s_median": round(statistics.median(rates), 1),
            **{k: round(v, 1) for k, v in memory(args.device).items()},
        }
        rows.append(row)
        mem = ", ".join(f"{k} {v}" for k, v in row.items() if k.endswith("mib"))
        print(f"batch {size:4d}: {row['texts_per_s_median']:8.1f} texts/s median "
              f"(best {row['texts_per_s_best']:.1f}); {mem}")  # fmt: skip
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()

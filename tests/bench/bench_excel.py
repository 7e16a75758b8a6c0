"""Excel processor benchmark: rows/s of the processor vs plain openpyxl on the same file.

    python -m tests.bench.bench_excel [--rows 20000] [--repeat 3]

One generated workbook (a header and `rows` product-like rows of 8 columns: text, numbers,
dates) is read three ways in the same run, best of `repeat` each:

- plain openpyxl: `load_workbook(read_only=True, data_only=True)` and iterating
  `iter_rows(values_only=True)`, nothing else (the floor any reader pays);
- the processor's reader in-process (`parse_workbook`: archive checks, limits, header
  detection, records with their text);
- the processor over HTTP (`indexforge-excel` as a child process without Redis, so every
  upload is parsed): upload, parse, JSON response of every record.

Prints a table and one JSON line. Not collected by pytest (no test_ functions).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
from openpyxl import Workbook, load_workbook

from indexforge_services.excel.workbook import ReadLimits, parse_workbook
from tests.bench.services import running_service

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAMES = ["kettle", "fridge", "toaster", "lamp", "heater", "blender", "vacuum", "fan"]


def make_workbook(rows: int) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Products")
    sheet.append(["SKU", "Name", "Description", "Category", "Price", "Stock", "Added", "Rating"])
    start = dt.date(2024, 1, 1)
    for i in range(rows):
        name = NAMES[i % len(NAMES)]
        sheet.append(
            [
                f"SKU-{i:06d}",
                f"{name.title()} model {i % 97}",
                f"A {name} for home use, batch {i // 100}, colour {('red', 'blue', 'grey')[i % 3]}",
                ("kitchen", "living room", "office")[i % 3],
                round(10 + (i % 500) * 1.37, 2),
                i % 250,
                start + dt.timedelta(days=i % 365),
                (i % 5) + 1,
            ]
        )
    buf = io.BytesIO()
    workbook.save(buf)
    return buf.getvalue()


def plain_openpyxl(data: bytes) -> int:
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    count = 0
    for sheet in workbook.worksheets:
        for _ in sheet.iter_rows(values_only=True):
            count += 1
    workbook.close()
    return count - 1  # the header is not a data row


def processor(data: bytes, rows: int) -> int:
    return len(parse_workbook(data, ReadLimits(max_rows=rows + 10)).records)


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def excel_server(max_rows: int) -> AbstractContextManager[str]:
    settings = {
        "INDEXFORGE_MAX_ROWS": str(max_rows),
        "INDEXFORGE_MAX_UPLOAD_BYTES": str(200 * 1024 * 1024),
    }
    return running_service("excel", settings, ready_path="/readyz")


def over_http(url: str, data: bytes) -> int:
    with httpx.Client(base_url=url, timeout=300) as client:
        response = client.post("/api/v1/excel/parse", files={"file": ("bench.xlsx", data, XLSX)})
        response.raise_for_status()
        return int(response.json()["row_count"])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    data = make_workbook(args.rows)
    plain_s, plain_rows = best_of(args.repeat, lambda: plain_openpyxl(data))
    reader_s, reader_rows = best_of(args.repeat, lambda: processor(data, args.rows))
    with excel_server(args.rows + 10) as url:
        over_http(url, data)  # warm-up: imports, first request
        http_s, http_rows = best_of(args.repeat, lambda: over_http(url, data))
    assert plain_rows == reader_rows == http_rows == args.rows, (plain_rows, reader_rows, http_rows)

    rate = {
        name: args.rows / s
        for name, s in (("plain", plain_s), ("reader", reader_s), ("http", http_s))
    }
    figures = {
        "rows": args.rows,
        "file_bytes": len(data),
        "plain_openpyxl_rows_per_s": round(rate["plain"]),
        "processor_rows_per_s": round(rate["reader"]),
        "processor_http_rows_per_s": round(rate["http"]),
        "processor_vs_openpyxl_ratio": round(rate["reader"] / rate["plain"], 3),
        "http_vs_openpyxl_ratio": round(rate["http"] / rate["plain"], 3),
    }
    print(
        f"{args.rows} rows x 8 columns, {len(data) / 1e6:.1f} MB, best of {args.repeat}, "
        f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    for label, key in (
        ("plain openpyxl read-only iteration", "plain"),
        ("processor reader (in-process)", "reader"),
        ("processor over HTTP (upload + JSON)", "http"),
    ):
        print(f"{label:<40} {rate[key]:10.0f} rows/s")
    print(
        f"processor/openpyxl ratio {figures['processor_vs_openpyxl_ratio']:.2f} (aim >= 0.7); "
        f"over HTTP {figures['http_vs_openpyxl_ratio']:.2f}"
    )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()

"""Excel processor benchmark: rows/s of the processor vs plain openpyxl on the same file.

    python -m tests.bench.bench_excel [--rows 20000] [--repeat 3]

One generated workbook (a header and `rows` product-like rows of 8 columns: text, numbers,
dates) is read three ways in the same run, interleaved `repeat` rounds (each round runs
every way once; tests/bench/spread.py), rows/s as median (min..max):

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
from tests.bench.spread import interleaved, ratio

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


def rows_per_s(run: Callable[[], int], rows: int) -> Callable[[], float]:
    def timed() -> float:
        start = time.perf_counter()
        count = run()
        assert count == rows, (count, rows)
        return rows / (time.perf_counter() - start)

    return timed


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
    with excel_server(args.rows + 10) as url:
        over_http(url, data)  # warm-up: imports, first request
        results = interleaved(
            {
                "plain openpyxl read-only iteration": rows_per_s(
                    lambda: plain_openpyxl(data), args.rows
                ),
                "processor reader (in-process)": rows_per_s(
                    lambda: processor(data, args.rows), args.rows
                ),
                "processor over HTTP (upload + JSON)": rows_per_s(
                    lambda: over_http(url, data), args.rows
                ),
            },
            args.repeat,
        )
    plain, reader, http = results.values()
    figures = {
        "rows": args.rows,
        "file_bytes": len(data),
        "plain_openpyxl_rows_per_s": plain.as_dict(0),
        "processor_rows_per_s": reader.as_dict(0),
        "processor_http_rows_per_s": http.as_dict(0),
        "processor_vs_openpyxl_ratio": ratio(reader, plain),
        "http_vs_openpyxl_ratio": ratio(http, plain),
    }
    print(
        f"{args.rows} rows x 8 columns, {len(data) / 1e6:.1f} MB, {args.repeat} rounds "
        f"interleaved, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    for label, spread in results.items():
        print(f"{label:<40} {spread.cell()} rows/s")
    print(
        f"processor/openpyxl ratio {figures['processor_vs_openpyxl_ratio']:.2f} (aim >= 0.7); "
        f"over HTTP {figures['http_vs_openpyxl_ratio']:.2f} (ratios of medians)"
    )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()

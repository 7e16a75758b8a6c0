"""The Excel processor over HTTP: records, the content-hash cache, limits, metrics, fuzzing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest
import redis
from schemathesis import GenerationMode

from indexforge_services.excel.app import create_app

from .conftest import RedisProcess, ServerThread, excel_settings, metric
from .fuzzing import fuzz_for_server_errors
from .workbooks import (
    PRODUCTS,
    encrypted_xlsx,
    garbled_xlsx,
    products_xlsx,
    truncated_xlsx,
    wide_xlsx,
    xlsx,
    zip_bomb,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def excel(excel_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=excel_server.url, timeout=60) as c:
        yield c


def upload(client: httpx.Client, data: bytes, name: str = "book.xlsx") -> httpx.Response:
    return client.post("/api/v1/excel/parse", files={"file": (name, data, XLSX)})


def test_parse_returns_records_and_caches_by_content_hash(
    excel: httpx.Client, excel_server: ServerThread, app_redis: RedisProcess
) -> None:
    data = xlsx({"Stock": [["Item", "Qty"], ["bolts", 10], ["nuts", 12]]})
    first = upload(excel, data)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["row_count"] == 2 and body["cached"] is False
    assert body["sheets"] == [
        {"name": "Stock", "header": ["Item", "Qty"], "header_row": 1, "rows": 2}
    ]
    assert body["records"][1] == {
        "sheet": "Stock",
        "row": 3,
        "fields": {"Item": "nuts", "Qty": 12},
        "text": "Item: nuts; Qty: 12",
    }

    # Same bytes under another name: answered from the app Redis (db 1), same records.
    again = upload(excel, data, name="renamed.xlsx")
    assert again.headers["X-Cache"] == "hit" and again.json()["cached"] is True
    assert again.json()["records"] == body["records"]
    keys = redis.Redis.from_url(app_redis.db_url(1)).keys(f"*wb:{body['sha256']}*")
    assert len(keys) == 1
    ttl = redis.Redis.from_url(app_redis.db_url(1)).ttl(keys[0])
    assert 1700 < ttl <= 1800 + 60  # 30 min (+ the stale-while-revalidate window)

    app = excel_server.app
    assert metric(app, "excel_rows_total") >= 2
    assert metric(app, "excel_rows_per_second") > 0
    assert metric(app, "excel_files_total", result="parsed") >= 1


BAD = [
    # (id, bytes, file name, status, words in the message)
    ("empty", b"", "a.xlsx", 400, "empty"),
    ("corrupt", truncated_xlsx(), "a.xlsx", 400, "corrupt"),
    ("garbled", garbled_xlsx(), "a.xlsx", 400, "could not be read"),
    ("csv content", b"a,b\n1,2\n", "a.xlsx", 415, "not an .xlsx"),
    ("encrypted", encrypted_xlsx(), "a.xlsx", 415, "password-protected"),
    ("zip bomb", zip_bomb(64), "a.xlsx", 422, "zip bomb"),
    ("10k columns", wide_xlsx(10_000), "a.xlsx", 422, "10000 columns"),
]


@pytest.mark.parametrize(
    ("data", "name", "status", "words"), [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_bad_files_get_a_clear_4xx_and_the_service_stays_up(
    excel: httpx.Client, excel_server: ServerThread, data: bytes, name: str, status: int, words: str
) -> None:
    response = upload(excel, data, name)
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert words in body["error"], body
    assert metric(excel_server.app, "excel_rejects_total", reason=body["reason"]) >= 1
    assert excel.get("/healthz").status_code == 200


def test_size_limit_is_413_and_the_upload_route_takes_more_than_2_mib(
    app_redis: RedisProcess,
) -> None:
    # Hardly compressible cells: over the 2 MiB JSON body limit, under the upload limit.
    rows = [["blob"]] + [[os.urandom(1500).hex()] for _ in range(1600)]
    big = xlsx({"Blobs": rows})
    assert len(big) > 2 * 1024 * 1024
    app = create_app(excel_settings(max_upload_bytes=len(big) + 10))
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        ok = upload(client, big)
        assert ok.status_code == 200, ok.text[:300]
        assert ok.json()["row_count"] == 1600
    small = create_app(excel_settings(max_upload_bytes=1024 * 1024))
    with ServerThread(small) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        refused = upload(client, products_xlsx() + b"\0" * (1024 * 1024))
        assert refused.status_code == 413
        assert "limit is 1048576" in refused.json()["error"]
        way_over = upload(client, big)  # body larger than the route's limit: refused unread
        assert way_over.status_code == 413


def test_missing_file_part_and_limits_endpoint(excel: httpx.Client) -> None:
    missing = excel.post("/api/v1/excel/parse", data={"other": "x"})
    assert missing.status_code == 422 and "file" in missing.json()["error"]
    limits = excel.get("/api/v1/excel/limits").json()
    assert limits["max_columns"] == 1024 and limits["max_upload_bytes"] == 5 * 1024 * 1024


def test_process_metrics_are_exported(excel: httpx.Client) -> None:
    text = excel.get("/metrics").text
    assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text


def test_products_workbook_round_trip(excel: httpx.Client) -> None:
    body = upload(excel, products_xlsx()).json()
    assert [r["fields"]["Name"] for r in body["records"]] == [p[1] for p in PRODUCTS]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error(
    excel_server: ServerThread, mode: GenerationMode
) -> None:
    seen = fuzz_for_server_errors(excel_server.url, mode)
    assert any(path == "/api/v1/excel/parse" for _, path, _ in seen), seen
    if mode is GenerationMode.NEGATIVE:
        assert any(kind == 4 for _, _, kind in seen), seen

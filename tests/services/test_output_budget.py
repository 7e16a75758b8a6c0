"""Issue 10, finding 3: a small file must not turn into unbounded output.

A ~24 KB workbook whose cells all reference one 16,000-character shared string passes every
archive check (the archive itself is not a zip bomb) yet reads into ~80 MB of records. The
Excel processor stops such a file while streaming rows, with `output_budget_exceeded`, and the
API fails the job with that reason; the same budget bounds CSV uploads in the API. Archives
of many small, extremely compressed members are zip bombs too.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from indexforge_services.common.tabular import column_names
from indexforge_services.excel.archive import ArchiveLimits, check_archive
from indexforge_services.excel.errors import ExcelRejected
from indexforge_services.excel.workbook import ReadLimits, parse_workbook

from .conftest import ApiFactory, ServerThread, wait_job
from .service_process import ServiceProcess
from .workbooks import products_xlsx, shared_string_bomb, small_member_bomb, xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PARSE = "/api/v1/excel/parse"
MIB = 1024 * 1024


def test_shared_string_bomb_is_stopped_by_a_real_excel_process(tmp_path: Path) -> None:
    bomb = shared_string_bomb()
    assert len(bomb) < 32 * 1024  # small enough for every size and zip-bomb check
    with ServiceProcess("excel", {}, tmp_path) as excel:
        before = excel.memory_kib("VmHWM")
        started = time.monotonic()
        response = httpx.post(
            f"{excel.url}{PARSE}", files={"file": ("bomb.xlsx", bomb, XLSX)}, timeout=180
        )
        elapsed = time.monotonic() - started
        growth_mib = (excel.memory_kib("VmHWM") - before) / 1024
        print(
            f"\nexcel bomb: {len(bomb)} bytes in -> HTTP {response.status_code}, "
            f"{len(response.content)} bytes out in {elapsed:.2f}s; peak RSS +{growth_mib:.0f} MiB"
        )
        assert response.status_code == 422, f"{response.status_code}, {len(response.content)} B"
        body = response.json()
        assert body["reason"] == "output_budget_exceeded", body
        assert "characters" in body["error"], body
        assert len(response.content) < 2000
        assert elapsed < 10, elapsed
        assert growth_mib < 64, f"peak RSS grew {growth_mib:.0f} MiB"
        assert httpx.get(f"{excel.url}/healthz", timeout=5).status_code == 200


def test_the_api_fails_the_job_with_the_budget_reason(make_api: ApiFactory) -> None:
    with make_api() as server, httpx.Client(base_url=server.url, timeout=60) as client:
        accepted = client.post(
            "/api/v1/documents", files={"file": ("bomb.xlsx", shared_string_bomb(), XLSX)}
        )
        assert accepted.status_code == 202, accepted.text[:300]
        job = wait_job(client, accepted.json()["job_id"], timeout=180)
        assert (job["status"], job["reason"], job["written"]) == (
            "failed",
            "output_budget_exceeded",
            0,
        ), job
        assert "characters" in job["error"], job["error"]
        assert client.get(f"/api/v1/documents/{job['document_id']}").status_code == 404


def test_many_small_compressed_members_are_a_zip_bomb(excel_server: ServerThread) -> None:
    bomb = small_member_bomb()
    assert len(bomb) < 200_000
    with pytest.raises(ExcelRejected, match="expands") as caught:
        check_archive(bomb, ArchiveLimits())
    assert caught.value.reason == "zip_bomb"
    response = httpx.post(
        f"{excel_server.url}{PARSE}", files={"file": ("b.xlsx", bomb, XLSX)}, timeout=60
    )
    assert response.status_code == 422, response.text[:300]
    assert response.json()["reason"] == "zip_bomb"
    check_archive(products_xlsx(), ArchiveLimits())  # a real workbook still passes


def test_the_budget_counts_what_is_emitted_and_a_legit_sheet_fits() -> None:
    data = products_xlsx()
    emitted = parse_workbook(data, ReadLimits()).output_chars
    assert emitted > 0
    assert len(parse_workbook(data, ReadLimits(max_output_chars=emitted)).records) == 8
    with pytest.raises(ExcelRejected) as caught:
        parse_workbook(data, ReadLimits(max_output_chars=emitted - 1))
    assert (caught.value.status, caught.value.reason) == (422, "output_budget_exceeded")
    # 20k ordinary rows (~0.7 MB of workbook) pass the default budget.
    rows = [["id", "name", "city", "amount"]]
    rows += [[i, f"customer {i}", f"city {i % 97}", i * 1.5] for i in range(20_000)]
    parsed = parse_workbook(xlsx({"Orders": rows}), ReadLimits(max_rows=100_000))
    assert len(parsed.records) == 20_000


def test_identical_long_titles_are_numbered_in_linear_time() -> None:
    started = time.monotonic()
    names = column_names(["t" * 16_000] * 1024, 1024)
    assert time.monotonic() - started < 1.0
    assert len(set(names)) == 1024 and names[1] == "t" * 16_000 + "_2"


def test_csv_whose_header_multiplies_every_row_is_refused(make_api: ApiFactory) -> None:
    # 64 titles of 16,000 characters (1 MB): every one of the 200 rows repeats them all.
    header = ",".join(f"{i:02d}" + "h" * 15_998 for i in range(64))
    row = ",".join("1" for _ in range(64))
    data = "\n".join([header, *[row] * 200]).encode()
    with make_api() as server, httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.post("/api/v1/documents", files={"file": ("wide.csv", data, "text/csv")})
        assert response.status_code == 422, response.text[:300]
        body = response.json()
        assert body["code"] == "output_budget_exceeded" and "characters" in body["error"]
        assert client.get("/healthz").status_code == 200


def test_the_budget_is_a_setting_of_both_services() -> None:
    from indexforge_services.api.settings import ApiSettings
    from indexforge_services.excel.settings import ExcelSettings

    env = {"INDEXFORGE_MAX_OUTPUT_CHARS": str(5 * MIB), "INDEXFORGE_MAX_OUTPUT_RATIO": "50"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        for settings in (ApiSettings(), ExcelSettings()):
            assert settings.max_output_chars == 5 * MIB  # type: ignore[union-attr]
            assert settings.max_output_ratio == 50  # type: ignore[union-attr]

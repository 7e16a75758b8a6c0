"""Issue 10, finding 4: reading a CSV upload never freezes the API.

`csv.Sniffer` is quadratic on `,"` repeated (64 KiB: tens of seconds) and ran inside the
async handler, so one small request stopped every other request, health checks included.
Uploads now take an explicit `delimiter` (query or form field) or detect it in linear time,
and every parse runs off the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import free_port

from .conftest import ApiFactory, ServerThread, wait_job
from .service_process import ServiceProcess

ADVERSARIAL = b',"' * 32 * 1024  # 64 KiB, the size the old code sniffed


@pytest.fixture(scope="module")
def api(make_api: ApiFactory) -> Iterator[ServerThread]:
    with make_api() as server:
        yield server


@pytest.fixture
def client(api: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=60) as c:
        yield c


def test_adversarial_csv_does_not_block_health_checks(tmp_path: Path) -> None:
    # Its own process: a parse holding the GIL would freeze an in-process client as well,
    # and the probes would see nothing.
    env = {
        "INDEXFORGE_WEAVIATE_URL": f"http://127.0.0.1:{free_port()}",
        "INDEXFORGE_WEAVIATE_GRPC_PORT": str(free_port()),
    }
    outcome: dict[str, Any] = {}
    with ServiceProcess("api", env, tmp_path) as api:

        def upload() -> None:
            started = time.monotonic()
            files = {"file": ("evil.csv", ADVERSARIAL, "text/csv")}
            outcome["response"] = httpx.post(
                f"{api.url}/api/v1/documents", files=files, timeout=120
            )
            outcome["seconds"] = time.monotonic() - started

        uploader = threading.Thread(target=upload, daemon=True)
        slowest = 0.0
        with httpx.Client(base_url=api.url, timeout=60) as probe:
            uploader.start()
            for _ in range(400):  # bounded: at most ~400 probes, and the upload's lifetime
                started = time.monotonic()
                assert probe.get("/healthz").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                if not uploader.is_alive():
                    break
                time.sleep(0.02)
        uploader.join(timeout=120)
    response: httpx.Response = outcome["response"]
    print(f"\nadversarial CSV: HTTP {response.status_code} in {outcome['seconds']:.2f}s; "
          f"slowest /healthz {slowest:.3f}s")  # fmt: skip
    assert slowest < 1.0, f"/healthz took {slowest:.1f}s while the CSV was read"
    assert outcome["seconds"] < 5.0
    assert response.status_code == 202 or 400 <= response.status_code < 500, response.text
    if response.status_code != 202:
        assert response.json()["error"]


def test_detection_is_linear_and_picks_the_consistent_delimiter() -> None:
    from indexforge_services.api.delimiters import detect_delimiter

    started = time.monotonic()
    assert detect_delimiter(',"' * 4 * 1024 * 1024) == ","  # 8 MiB of the adversarial input
    assert time.monotonic() - started < 1.0
    assert detect_delimiter("name;price\nfridge;3,99\ntoaster;24,50\n") == ";"
    assert detect_delimiter("a\tb\tc\n1\t2\t3\n") == "\t"
    assert detect_delimiter('name|note\nx|"a|b|c"\ny|d\n') == "|"
    assert detect_delimiter("just one column\nof text\n") == ","


def _sample(client: httpx.Client, accepted: httpx.Response) -> list[dict[str, Any]]:
    assert accepted.status_code == 202, accepted.text[:300]
    job = wait_job(client, accepted.json()["job_id"])
    assert job["status"] == "completed", job
    document = client.get(f"/api/v1/documents/{job['document_id']}").json()
    return [hit["fields"] for hit in document["sample"]]


def test_an_explicit_delimiter_wins_over_detection(client: httpx.Client) -> None:
    data = b"sku|note,extra\nK-1|kettle,steel\n"  # ',' and '|' both fit: ',' is detected
    detected = client.post("/api/v1/documents", files={"file": ("d.csv", data, "text/csv")})
    assert _sample(client, detected) == [{"sku|note": "K-1|kettle", "extra": "steel"}]
    by_query = client.post(
        "/api/v1/documents",
        params={"delimiter": "|"},
        files={"file": ("q.csv", data, "text/csv")},
    )
    assert _sample(client, by_query) == [{"sku": "K-1", "note,extra": "kettle,steel"}]
    by_form = client.post(
        "/api/v1/documents",
        data={"delimiter": "|"},
        files={"file": ("f.csv", data, "text/csv")},
    )
    assert _sample(client, by_form) == [{"sku": "K-1", "note,extra": "kettle,steel"}]


@pytest.mark.parametrize(
    "kwargs",
    [{"params": {"delimiter": "x"}}, {"data": {"delimiter": "::"}}],
    ids=["query", "form"],
)
def test_an_invalid_delimiter_is_a_422(client: httpx.Client, kwargs: dict[str, Any]) -> None:
    response = client.post(
        "/api/v1/documents", files={"file": ("a.csv", b"a,b\n1,2\n", "text/csv")}, **kwargs
    )
    assert response.status_code == 422, response.text[:300]
    assert "delimiter" in response.json()["error"]

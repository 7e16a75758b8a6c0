"""The gateway -> service hop is authenticated: X-IndexForge-Gateway-Token, over real HTTP.

Services with a token configured refuse callers without one (401, stable code, correlation
id), let probes, scrapes and Weaviate's inference calls through, pick up a rotated token file
without a restart, and the API forwards the token on its own calls to ML and Excel. Only an
authenticated hop may name the consumer (`X-Consumer-Username`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from indexforge_services.excel.app import create_app as create_excel_app
from indexforge_services.ml.app import create_app as create_ml_app
from indexforge_services.ml.model import Embedder
from tests.waiting import wait_for

from .conftest import (
    ApiFactory,
    ServerThread,
    excel_settings,
    metric,
    ml_settings,
    wait_job,
)
from .workbooks import products_xlsx

HEADER = "X-IndexForge-Gateway-Token"
TOKEN = "current-token-0123456789"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def write_tokens(path: Path, *tokens: str) -> None:
    """Replace the file the way the kubelet updates a Secret volume: a new file, renamed in."""
    fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fresh.write_text("".join(f"{t}\n" for t in tokens))
    os.replace(fresh, path)


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway" / "tokens"
    path.parent.mkdir()
    write_tokens(path, TOKEN)
    return path


@pytest.fixture
def guarded_ml(embedder: Embedder, tokens_file: Path) -> Iterator[ServerThread]:
    app = create_ml_app(ml_settings(gateway_tokens_file=tokens_file), encoder=embedder)
    with ServerThread(app) as server:
        yield server


def test_a_service_refuses_calls_without_a_valid_token(guarded_ml: ServerThread) -> None:
    body = {"texts": ["a cold fridge"]}
    with httpx.Client(base_url=guarded_ml.url, timeout=60) as c:
        missing = c.post("/api/v1/ml/embeddings", json=body, headers={"X-Request-ID": "cid-1"})
        wrong = c.post("/api/v1/ml/embeddings", json=body, headers={HEADER: "guessed-token"})
        for refused in (missing, wrong):
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "gateway_token_invalid"
            assert refused.json()["correlation_id"] == refused.headers["X-Request-ID"]
        assert missing.json()["correlation_id"] == "cid-1"

        ok = c.post("/api/v1/ml/embeddings", json=body, headers={HEADER: TOKEN})
        assert ok.status_code == 200, ok.text
    app = guarded_ml.app
    assert metric(app, "indexforge_gateway_auth_rejected_total", reason="missing") == 1
    assert metric(app, "indexforge_gateway_auth_rejected_total", reason="invalid") == 1
    # The 401s count as traffic like any other answer (refused before routing).
    labels = {"method": "POST", "route": "<unmatched>", "status": "401"}
    assert metric(app, "http_requests_total", **labels) == 2


def test_probes_scrapes_and_weaviates_inference_calls_need_no_token(
    guarded_ml: ServerThread,
) -> None:
    with httpx.Client(base_url=guarded_ml.url, timeout=60) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/metrics").status_code == 200
        # Weaviate's text2vec-transformers client sends no custom header.
        assert c.get("/.well-known/live").status_code == 204
        assert c.get("/.well-known/ready").status_code == 204
        assert c.get("/meta").status_code == 200
        assert c.post("/vectors", json={"text": "weaviate asks"}).status_code == 200
        assert c.post("/vectors/", json={"text": "weaviate asks"}).status_code == 200
        # Everything else is guarded, including paths that do not exist.
        assert c.post("/api/v1/ml/similarity", json={"pairs": []}).status_code == 401
        assert c.get("/openapi.json").status_code == 401


def test_a_rotated_token_file_is_picked_up_without_a_restart(
    guarded_ml: ServerThread, tokens_file: Path
) -> None:
    body = {"texts": ["rotation"]}
    old, new = TOKEN, "next-token-9876543210"

    def status(token: str) -> int:
        return c.post("/api/v1/ml/embeddings", json=body, headers={HEADER: token}).status_code

    with httpx.Client(base_url=guarded_ml.url, timeout=60) as c:
        assert (status(old), status(new)) == (200, 401)
        write_tokens(tokens_file, new, old)  # overlap: both accepted
        wait_for(lambda: status(new) == 200, timeout=15, what="new token accepted")
        assert status(old) == 200
        write_tokens(tokens_file, new)  # the old one is retired
        wait_for(lambda: status(old) == 401, timeout=15, what="old token refused")
        assert status(new) == 200


def test_a_configured_but_missing_token_file_refuses_everyone(
    embedder: Embedder, tmp_path: Path
) -> None:
    """Fail closed: a broken mount must not switch the check off."""
    settings = ml_settings(gateway_tokens_file=tmp_path / "absent")
    with (
        ServerThread(create_ml_app(settings, encoder=embedder)) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        for token in (None, "", "anything"):
            headers = {HEADER: token} if token is not None else {}
            refused = c.post("/api/v1/ml/embeddings", json={"texts": ["x"]}, headers=headers)
            assert refused.status_code == 401
        assert c.get("/readyz").status_code == 200


def test_the_api_forwards_the_token_to_ml_and_excel(
    make_api: ApiFactory, embedder: Embedder, tokens_file: Path
) -> None:
    """ML and Excel refuse calls without the token: ingestion works only if the API sends it."""
    ml_app = create_ml_app(ml_settings(gateway_tokens_file=tokens_file), encoder=embedder)
    excel_app = create_excel_app(excel_settings(gateway_tokens_file=tokens_file))
    with (
        ServerThread(ml_app) as ml,
        ServerThread(excel_app) as excel,
        make_api(ml_url=ml.url, excel_url=excel.url, gateway_tokens_file=tokens_file) as api,
        httpx.Client(base_url=api.url, timeout=60, headers={HEADER: TOKEN}) as c,
    ):
        upload = c.post(
            "/api/v1/documents", files={"file": ("products.xlsx", products_xlsx(), XLSX)}
        )
        assert upload.status_code == 202, upload.text
        job = wait_job(c, upload.json()["job_id"])
        assert job["status"] == "completed", job
        hits = c.get("/api/v1/search", params={"q": "something to keep drinks cold"}).json()
        assert hits["results"], hits
        assert metric(ml.app, "indexforge_gateway_auth_rejected_total", reason="missing") == 0
        assert metric(excel.app, "indexforge_gateway_auth_rejected_total", reason="missing") == 0
        labels = {"method": "POST", "route": "/api/v1/excel/parse", "status": "200"}
        assert metric(excel.app, "http_requests_total", **labels) == 1


def test_consumer_headers_count_only_on_an_authenticated_hop(
    make_api: ApiFactory, tokens_file: Path
) -> None:
    """Without a gateway (auth not required) the API still serves anyone, but a caller
    without the token cannot pass itself off as a Kong consumer."""
    token = {HEADER: TOKEN}
    with (
        make_api(gateway_tokens_file=tokens_file, gateway_auth_required=False) as api,
        httpx.Client(base_url=api.url, timeout=60) as c,
    ):
        forged = c.get(
            "/api/v1/search", params={"q": "x"}, headers={"X-Consumer-Username": "mallory"}
        )
        assert forged.status_code == 200
        through_kong = c.get(
            "/api/v1/search", params={"q": "x"}, headers={**token, "X-Consumer-Username": "alice"}
        )
        assert through_kong.status_code == 200
        app = api.app
        assert metric(app, "api_consumer_requests_total", consumer="mallory") == 0
        assert metric(app, "api_consumer_requests_total", consumer="anonymous") == 1
        assert metric(app, "api_consumer_requests_total", consumer="alice") == 1

    # Required (the gateway is deployed): no token, no answer, whatever headers claim.
    with (
        make_api(gateway_tokens_file=tokens_file) as api,
        httpx.Client(base_url=api.url, timeout=60) as c,
    ):
        refused = c.get(
            "/api/v1/search", params={"q": "x"}, headers={"X-Consumer-Username": "alice"}
        )
        assert refused.status_code == 401
        assert refused.json()["code"] == "gateway_token_invalid"
        assert c.post("/api/v1/documents", json={"text": "no token"}).status_code == 401
        assert c.get("/api/v1/search", params={"q": "x"}, headers=token).status_code == 200

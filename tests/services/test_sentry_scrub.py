"""Sentry events leave without secrets: a real sentry_sdk event of a failing request, captured
by an in-memory transport, carries no configured secret (gateway tokens, Redis password)
and no credential header, in frames' local variables, request data, headers or messages."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sentry_sdk
from fastapi import Request

from indexforge_services.ml.app import create_app
from indexforge_services.ml.model import Embedder

from .conftest import ml_settings, running_client
from .test_ml_telemetry import MemoryTransport

ENV_TOKEN = f"env-token-{uuid.uuid4().hex}"
FILE_TOKEN = f"file-token-{uuid.uuid4().hex}"
REDIS_PASSWORD = f"redis-pw-{uuid.uuid4().hex}"
# Credentials of the caller, which only the gateway should ever see.
BEARER = f"bearer-{uuid.uuid4().hex}"
CONSUMER_KEY = f"consumer-key-{uuid.uuid4().hex}"
COOKIE = f"cookie-{uuid.uuid4().hex}"
SECRETS = (ENV_TOKEN, FILE_TOKEN, REDIS_PASSWORD, BEARER, CONSUMER_KEY, COOKIE)


@pytest.fixture
def transport() -> Iterator[MemoryTransport]:
    memory = MemoryTransport()
    yield memory
    sentry_sdk.init()  # back to a disabled client for the rest of the session


async def leaky(request: Request) -> None:
    """A handler failing with secrets all over its frame (as a careless library might)."""
    body = await request.json()
    connection = f"redis://:{REDIS_PASSWORD}@cache:6379/0"
    remembered = body["note"]  # an innocent name holding a secret value
    header_copy = dict(request.headers)
    raise RuntimeError(f"lost {connection} holding {remembered}, {FILE_TOKEN}, {len(header_copy)}")


async def test_events_carry_no_secret_anywhere(
    embedder: Embedder, transport: MemoryTransport, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{FILE_TOKEN}\n")
    settings = ml_settings(
        sentry_dsn="https://public@sentry.invalid/1",
        gateway_tokens=ENV_TOKEN,
        gateway_tokens_file=tokens,
        redis_password=REDIS_PASSWORD,
    )
    app = create_app(settings, encoder=embedder, sentry_transport=transport)
    app.add_api_route("/api/v1/ml/leaky", leaky, methods=["POST"])
    headers = {
        "X-IndexForge-Gateway-Token": FILE_TOKEN,
        "Authorization": f"Bearer {BEARER}",
        "apikey": CONSUMER_KEY,
        "Cookie": f"session={COOKIE}",
    }
    async with running_client(app) as client:
        response = await client.post(
            "/api/v1/ml/leaky", json={"note": ENV_TOKEN, "rows": 3}, headers=headers
        )
        assert response.status_code == 500
        assert response.json()["code"] == "internal_error"
        assert not any(s in response.text for s in SECRETS)
    sentry_sdk.flush()

    (event,) = transport.events()
    dumped = json.dumps(event)
    leaked = [s for s in SECRETS if s in dumped]
    assert leaked == [], f"secrets in the Sentry event: {leaked}"
    # Still useful: the error, its frames and their variable names are there.
    assert event["fingerprint"] == ["RuntimeError"]
    (frame,) = [
        f
        for f in event["exception"]["values"][-1]["stacktrace"]["frames"]
        if f.get("function") == "leaky"
    ]
    assert {"connection", "remembered", "header_copy"} <= set(frame["vars"])
    assert "redis://:[Filtered]@cache:6379/0" in frame["vars"]["connection"]
    assert event["request"]["headers"]["x-indexforge-gateway-token"] == "[Filtered]"

"""Pure pieces of the hop/credential/caching policy: token file timing, Cache-Control table,
secret scrubbing, public job errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexforge_services.api.cache_control import header_value
from indexforge_services.api.jobs import public_error
from indexforge_services.common.gateway_auth import GatewayTokens
from indexforge_services.common.sentry import FILTERED, scrub, usable_secrets
from indexforge_services.common.settings import ServiceSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_file_is_looked_at_no_more_than_every_recheck_interval(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("file-one\n\nfile-two\n")
    clock = Clock()
    tokens = GatewayTokens(static=["env-one"], file=path, recheck_seconds=2.0, clock=clock)
    assert tokens.current() == ("file-one", "file-two", "env-one")  # file first: sent by Kong
    assert tokens.outgoing() == "file-one"
    assert tokens.accepts(b"env-one") and tokens.accepts(b"file-two")
    assert not tokens.accepts(b"file-on") and not tokens.accepts(b"")

    path.write_text("file-three\n")
    clock.now += 1.0
    assert tokens.current()[0] == "file-one"  # within the interval: not even a stat
    clock.now += 1.5
    assert tokens.current() == ("file-three", "env-one")

    path.unlink()  # a broken mount: the file's tokens go, the variable's stay
    clock.now += 5
    assert tokens.current() == ("env-one",)
    assert not tokens.accepts(b"file-three")


def test_tokens_from_settings_and_when_nothing_is_configured() -> None:
    settings = ServiceSettings(gateway_tokens=" a-token-1 , b-token-2 ,", gateway_tokens_file=None)
    assert GatewayTokens.from_settings(settings).current() == ("a-token-1", "b-token-2")
    nothing = GatewayTokens.from_settings(
        ServiceSettings(gateway_tokens=None, gateway_tokens_file=None)
    )
    assert not nothing.configured and nothing.outgoing() is None


@pytest.mark.parametrize(
    ("method", "status", "policy", "max_age", "expected"),
    [
        ("GET", 200, "shared", 30, "public, max-age=30"),
        ("GET", 200, "shared", 0, "no-store"),  # caching at the gateway switched off
        ("GET", 404, "shared", 30, "no-store"),  # errors are never kept
        ("GET", 503, "shared", 30, "no-store"),
        ("POST", 200, "shared", 30, "no-store"),
        ("GET", 200, "private", 30, "no-store"),  # jobs, documents
        ("GET", 200, None, 30, "no-store"),  # undeclared routes: the safe default
    ],
)
def test_cache_control_table(
    method: str, status: int, policy: str | None, max_age: int, expected: str
) -> None:
    value = header_value(method=method, status=status, policy=policy, max_age=max_age)  # type: ignore[arg-type]
    assert value == expected


def test_scrub_blanks_configured_secrets_and_secret_header_pairs() -> None:
    secrets = usable_secrets(["short", "s3cret-value-1", "s3cret-value-1-longer"])
    assert secrets == ["s3cret-value-1-longer", "s3cret-value-1"]  # too short: not looked for
    event = {
        "vars": {"innocent": "'s3cret-value-1-longer'", "note": "short stays"},
        "headers": [["b'apikey'", "b'k-123'"], ["b'host'", "b'api'"]],
        "message": "failed with s3cret-value-1",
    }
    assert scrub(event, secrets=secrets) == {
        "vars": {"innocent": f"'{FILTERED}'", "note": "short stays"},
        "headers": [["b'apikey'", FILTERED], ["b'host'", "b'api'"]],
        "message": f"failed with {FILTERED}",
    }


def test_public_job_errors_hide_infrastructure_details() -> None:
    detail = "ML service unreachable after 3 attempts (ConnectError: http://ml.ns.svc:8080)"
    assert "svc" not in public_error("ml_unavailable", detail)
    assert "svc" not in public_error("weaviate_unavailable", f"Weaviate call failed: {detail}")
    # The verdict on the client's own input is what the client needs to read.
    rejected = "the Excel processor refused the workbook: sheet 'A' has 70000 rows"
    assert public_error("rejected", rejected) == rejected

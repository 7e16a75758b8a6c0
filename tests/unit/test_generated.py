"""Generated secrets: created once, kept across reconciles, read back from the Secrets."""

from __future__ import annotations

import base64

import pytest

from indexforge_operator.builders import build_all
from indexforge_operator.generated import GeneratedSecrets, complete, from_secret_data

from .support import NAMES, counter_tokens, find, make_spec

TWO = {"gateway": {"keyAuth": {"consumers": [{"username": "web"}, {"username": "batch"}]}}}


def test_complete_fills_only_what_is_missing() -> None:
    spec = make_spec(TWO)
    current = GeneratedSecrets(
        consumer_keys={"web": "kept", "gone": "x"}, grafana_admin_password=""
    )
    done = complete(spec, current=current, token=counter_tokens("new"))
    assert dict(done.consumer_keys) == {"web": "kept", "batch": "new1"}
    assert done.grafana_admin_password == "new2"


def test_nothing_generated_for_disabled_parts() -> None:
    spec = make_spec({"gateway": {"enabled": False}, "monitoring": {"grafana": {"enabled": False}}})
    done = complete(spec, current=GeneratedSecrets(), token=counter_tokens())
    assert dict(done.consumer_keys) == {} and done.grafana_admin_password == ""


def test_round_trip_through_the_built_secrets() -> None:
    spec = make_spec(TWO)
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens())
    objs = build_all(spec, NAMES, secrets=secrets, prometheus_operator=False)
    read = from_secret_data(
        consumers=find(objs, "Secret", NAMES.gateway_consumers)["data"],
        grafana=find(objs, "Secret", NAMES.grafana_admin)["data"],
        internal=find(objs, "Secret", NAMES.internal_auth)["data"],
    )
    assert dict(read.consumer_keys) == dict(secrets.consumer_keys)
    assert read.gateway_tokens == secrets.gateway_tokens
    assert dict(read.redis_passwords) == dict(secrets.redis_passwords)
    assert read.weaviate_api_key == secrets.weaviate_api_key
    assert read.grafana_admin_password == secrets.grafana_admin_password
    # A second reconcile with what was read back builds identical objects.
    again = complete(spec, current=read, token=counter_tokens("other"))
    assert build_all(spec, NAMES, secrets=again, prometheus_operator=False) == objs


def test_repr_hides_values() -> None:
    secrets = GeneratedSecrets(
        consumer_keys={"web": "s3cr3t"},
        grafana_admin_password="pw",
        gateway_tokens=("tok-a",),
        redis_passwords={"redis-app": "rp"},
        weaviate_api_key="wk",
    )
    text = repr(secrets)
    assert not any(v in text for v in ("s3cr3t", "pw", "tok-a", "rp", "wk")), text


def test_internal_credentials_are_generated_once_for_every_spec() -> None:
    """Redis, Weaviate and the gateway token exist even without a gateway (the API still
    authenticates to ML and Excel), and what exists is never regenerated."""
    spec = make_spec({"gateway": {"enabled": False}})
    first = complete(spec, current=GeneratedSecrets(), token=counter_tokens("a"))
    assert first.gateway_tokens and first.weaviate_api_key
    assert set(first.redis_passwords) == {"redis-app", "redis-ml", "redis-state"}
    assert len({*first.redis_passwords.values(), first.weaviate_api_key}) == 4
    again = complete(spec, current=first, token=counter_tokens("b"))
    assert again == first


def test_an_old_token_is_kept_after_the_new_one() -> None:
    """The Secret lists tokens newest first; all of them are read back (rotation overlap)."""
    data = {"gateway-tokens": base64.b64encode(b"new\nold\n").decode()}
    read = from_secret_data(consumers=None, grafana=None, internal=data)
    assert read.gateway_tokens == ("new", "old")


def test_building_without_internal_credentials_fails_loudly() -> None:
    spec = make_spec({})
    with pytest.raises(ValueError, match="internal credentials"):
        build_all(spec, NAMES, secrets=GeneratedSecrets(), prometheus_operator=False)

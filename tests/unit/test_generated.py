"""Generated secrets: created once, kept across reconciles, read back from the Secrets."""

from __future__ import annotations

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
    )
    assert dict(read.consumer_keys) == dict(secrets.consumer_keys)
    assert read.grafana_admin_password == secrets.grafana_admin_password
    # A second reconcile with what was read back builds identical objects.
    again = complete(spec, current=read, token=counter_tokens("other"))
    assert build_all(spec, NAMES, secrets=again, prometheus_operator=False) == objs


def test_repr_hides_values() -> None:
    text = repr(GeneratedSecrets(consumer_keys={"web": "s3cr3t"}, grafana_admin_password="pw"))
    assert "s3cr3t" not in text and "pw" not in text

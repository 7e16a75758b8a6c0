"""Pure parts of the vault and externalSecrets providers: KV mapping, the write plan, the
ExternalSecret builder, the spec rules, the reconciler writing nothing when Vault fails."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest
import requests
from hvac import exceptions as hv
from pydantic import ValidationError

from indexforge_operator import decisions, generated, secret_providers, vault_kv, vault_store
from indexforge_operator.builders import build_all
from indexforge_operator.builders.external_secrets import (
    MARK,
    checks,
    placeholders,
    sync_findings,
)
from indexforge_operator.compare import trim
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec

from .test_reconciler import MemoryApi as _MemoryApi


class MemoryApi(_MemoryApi):
    def bearer_token(self) -> str:
        return "sa-token"


NAMES = Names("demo", "ns1")
VAULT = {"provider": "vault", "vault": {"address": "http://127.0.0.1:8200"}}


def _spec(**extra: Any) -> IndexForgeSpec:
    return IndexForgeSpec.model_validate(extra)


def _counter() -> Any:
    numbers = itertools.count()
    return lambda: f"tok{next(numbers)}"


GATEWAY = {"keyAuth": {"enabled": True, "consumers": [{"username": "alice"}]}}


def test_spec_rules() -> None:
    with pytest.raises(ValidationError, match=r"secrets\.vault\.address is required"):
        _spec(secrets={"provider": "vault"})
    with pytest.raises(ValidationError, match="externalSecrets needs"):
        _spec(secrets={"provider": "externalSecrets"})
    with pytest.raises(ValidationError):
        _spec(secrets={**VAULT, "vault": {"address": "vault:8200"}})  # no scheme
    _spec(secrets={"provider": "externalSecrets", "externalSecrets": {"storeRef": {"name": "s"}}})
    assert _spec().secrets.provider == "kubernetes"


def test_path_per_instance() -> None:
    spec = _spec(secrets=VAULT)
    assert vault_kv.kv_path(spec, NAMES) == "indexforge/ns1/demo"
    assert vault_kv.kv_path(spec, Names("other", "ns1")) == "indexforge/ns1/other"


def test_plan_generates_only_missing_and_writes_nothing_the_second_time() -> None:
    spec = _spec(secrets=VAULT, gateway=GATEWAY)
    first = vault_kv.plan(spec, {}, token=_counter())
    keys = set(first.additions)
    assert keys == {
        "consumer-alice", "gateway-tokens", "weaviate-api-key", "redis-app-password",
        "redis-ml-password", "redis-state-password", "grafana-admin-password",
    }  # fmt: skip
    assert "tok0" not in repr(first)
    again = vault_kv.plan(spec, dict(first.additions), token=_counter())
    assert again.additions == {}
    assert again.secrets == first.secrets


def test_plan_keeps_stored_values_and_extra_keys() -> None:
    spec = _spec(secrets=VAULT)
    stored = {"redis-app-password": "kept", "consumer-gone": "old", "gateway-tokens": "a\nb\n"}
    result = vault_kv.plan(spec, stored, token=_counter())
    assert "redis-app-password" not in result.additions
    assert "gateway-tokens" not in result.additions
    assert result.secrets.redis_password("redis-app") == "kept"
    assert result.secrets.gateway_tokens == ("a", "b")
    assert "consumer-gone" not in result.additions  # never deleted, never rewritten


def test_kv_round_trip() -> None:
    spec = _spec(secrets=VAULT, gateway=GATEWAY, messaging={"enabled": True})
    made = generated.complete(spec, current=generated.GeneratedSecrets(), token=_counter())
    assert vault_kv.from_kv(vault_kv.to_kv(made)) == made


@pytest.mark.parametrize(
    ("stored", "unusable"),
    [
        ({"consumer-alice": "it's", "redis-app-password": "fine-0123"}, ["consumer-alice"]),
        ({"weaviate-api-key": "two words", "grafana-admin-password": "#x"},
         ["grafana-admin-password", "weaviate-api-key"]),
        ({"gateway-tokens": "new-token\nold-token"}, []),  # a list: one value per line
        ({"gateway-tokens": "new-token\n\nold"}, ["gateway-tokens"]),  # an empty line
        ({"redis-ml-password": "new\nline"}, ["redis-ml-password"]),
        ({"redis-state-password": ""}, []),  # empty: missing, generated elsewhere
        ({"someone-elses-key": "a b"}, []),  # not ours: left alone
        ({"rabbitmq-password": "Az09!$%&()*+,-./:;<=>?@[]^_{|}~é"}, []),
    ],
)  # fmt: skip
def test_unusable_store_values_are_named_by_key(
    stored: dict[str, str], unusable: list[str]
) -> None:
    assert vault_kv.unusable_keys(stored) == unusable


def test_an_unusable_vault_value_is_a_vault_error_naming_the_key_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes: list[Any] = []
    monkeypatch.setattr(vault_store, "_client", lambda *a: object())
    monkeypatch.setattr(vault_store, "_login", lambda *a: None)
    monkeypatch.setattr(vault_store, "_read", lambda *a: ({"weaviate-api-key": "sec ret'"}, 3))
    monkeypatch.setattr(vault_store, "_write", lambda *a: writes.append(a) or 4)
    spec = _spec(secrets=VAULT)
    with pytest.raises(vault_store.VaultError) as err:
        vault_store.load_or_create(spec, NAMES, jwt="x", ca_pem=None, token=_counter())
    assert err.value.reason == "VaultValueInvalid"
    assert "weaviate-api-key" in err.value.message and "sec ret" not in err.value.message
    assert writes == []  # nothing generated over it, nothing written


def test_placeholders_build_external_secrets_not_secrets() -> None:
    spec = _spec(
        secrets={
            "provider": "externalSecrets",
            "vault": {
                "address": "https://vault:8200",
                "caSecretRef": {"name": "ca", "key": "ca.crt"},
            },
        },
        gateway=GATEWAY,
    )  # fmt: skip
    objs = build_all(spec, NAMES, secrets=generated.GeneratedSecrets(), prometheus_operator=False,
                     external_secrets=True)  # fmt: skip
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    for name in ("demo-internal-auth", "demo-gateway-consumers", "demo-grafana-admin",
                 "demo-gateway-config"):  # fmt: skip
        assert ("ExternalSecret", name) in kinds
        assert ("Secret", name) not in kinds
    assert ("SecretStore", "demo-secrets") in kinds
    # No Secret left carries a template: a literal template as a password would be a disaster.
    for obj in objs:
        if obj["kind"] == "Secret":
            for value in obj["data"].values():
                assert MARK not in base64.b64decode(value).decode()
    internal = next(o for o in objs if o["metadata"]["name"] == "demo-internal-auth")
    template = internal["spec"]["target"]["template"]["data"]
    conf = (
        'user default on >{{ index . "redis-app-password" }} ~* &* +@all\n'
        'masterauth {{ index . "redis-app-password" }}\n'
    )
    # Each template starts with the check of every store key it reads (once per key).
    assert template["redis-app.conf"] == checks(conf) + conf
    assert checks(conf).count("fail ") == 1 and '"redis-app-password"' in checks(conf)
    # The ACL sync sidecar's list: the stored password alone (no rotation through a store).
    listed = '{{ index . "redis-app-password" }}\n'
    assert template["redis-app-passwords"] == checks(listed) + listed
    tokens = '{{ index . "gateway-tokens" }}\n'
    assert template["gateway-tokens"] == checks(tokens) + tokens
    # The token list is checked line by line, single values as a whole.
    assert r"(\n" in checks(tokens) and r"(\n" not in checks(conf)
    assert internal["spec"]["dataFrom"] == [{"extract": {"key": "indexforge/ns1/demo"}}]
    store = next(o for o in objs if o["kind"] == "SecretStore")
    vault = store["spec"]["provider"]["vault"]
    assert vault["caProvider"] == {"type": "Secret", "name": "ca", "key": "ca.crt"}
    assert vault["auth"]["kubernetes"]["serviceAccountRef"] == {"name": "demo-secrets"}


def test_external_secrets_without_crd_emit_no_secret_at_all() -> None:
    spec = _spec(
        secrets={"provider": "externalSecrets", "externalSecrets": {"storeRef": {"name": "s"}}}
    )
    objs = build_all(spec, NAMES, secrets=placeholders(spec), prometheus_operator=False)
    assert not [o for o in objs if o["metadata"]["name"] == "demo-internal-auth"]
    found = decisions.check_integrations(spec, rabbitmq_cluster=False, keda=False,
                                         external_secrets=False)  # fmt: skip
    assert [f.reason for f in found] == ["ExternalSecretsCRDMissing"]


def test_vault_failure_reaches_the_reconciler_as_no_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    from indexforge_operator.reconciler import reconcile

    def refuse(*_: Any, **__: Any) -> Any:
        raise vault_store.VaultError("VaultUnavailable", "Vault at http://x unreachable")

    monkeypatch.setattr(vault_store, "load_or_create", refuse)
    kube = MemoryApi()
    body = {
        "apiVersion": "indexforge.io/v1alpha1",
        "kind": "IndexForge",
        "metadata": {"name": "demo", "namespace": "ns1", "uid": "u1", "generation": 1},
        "spec": {"secrets": VAULT, "monitoring": {"enabled": False}},
    }
    outcome = reconcile(kube, body, view=kube.view(), prometheus_operator=False, now="t")  # type: ignore[arg-type]
    assert not [c for c in kube.calls if not c.startswith("GET")]
    assert outcome.writes == 0
    assert ("VaultUnavailable", "Vault at http://x unreachable") in outcome.failures
    assert outcome.status is not None and outcome.status["phase"] == "Degraded"
    degraded = next(c for c in outcome.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "VaultUnavailable"
    assert ("Warning", "VaultUnavailable", "Vault at http://x unreachable") in outcome.events


def test_vault_source_requeues_after_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(secrets=VAULT)
    plan = vault_kv.plan(spec, {}, token=_counter())
    monkeypatch.setattr(
        vault_store, "load_or_create",
        lambda *a, **k: vault_store.Loaded(plan=plan, written=0, version=1),
    )  # fmt: skip
    source = secret_providers.load(MemoryApi(), NAMES, spec, view=None)  # type: ignore[arg-type]
    assert source.requeue_after == 60.0 and source.secrets == plan.secrets


def test_unreachable_vault_is_a_vault_error_with_a_timeout() -> None:
    spec = _spec(secrets={"provider": "vault", "vault": {"address": "http://127.0.0.1:9"}})
    with pytest.raises(vault_store.VaultError) as err:
        vault_store.load_or_create(spec, NAMES, jwt="x", ca_pem=None, token=_counter())
    assert err.value.reason == "VaultUnavailable"
    assert "127.0.0.1:9" in err.value.message


def test_no_token_is_an_auth_failure() -> None:
    spec = _spec(secrets={"provider": "vault", "vault": {"address": "http://127.0.0.1:9"}})
    with pytest.raises(vault_store.VaultError) as err:
        vault_store.load_or_create(spec, NAMES, jwt="", ca_pem=None, token=_counter())
    assert err.value.reason == "VaultAuthFailed"


def test_bearer_token_is_the_clients_own() -> None:
    from kubernetes import client as k8s

    from indexforge_operator.kube import Kube

    conf = k8s.Configuration()
    conf.api_key = {"BearerToken": "Bearer sa-jwt"}
    assert Kube(k8s.ApiClient(conf)).bearer_token() == "sa-jwt"
    assert Kube(k8s.ApiClient(k8s.Configuration())).bearer_token() == ""


@pytest.mark.parametrize(
    ("exc", "reason", "words"),
    [
        (requests.exceptions.ReadTimeout(), "VaultUnavailable", "timed out"),
        (requests.exceptions.ConnectionError(), "VaultUnavailable", "unreachable"),
        (hv.VaultDown("Vault is sealed", errors=["Vault is sealed"]), "VaultSealed", "sealed"),
        (hv.Forbidden("denied", errors=["permission denied"]), "VaultPermissionDenied", "denied"),
    ],
)
def test_vault_failures_map_to_reasons(exc: Exception, reason: str, words: str) -> None:
    vault = _spec(secrets=VAULT).secrets.vault
    found = vault_store._translate(exc, vault, "reading secret/indexforge/ns1/demo")
    assert found.reason == reason
    assert words in found.message and "127.0.0.1:8200" in found.message


def test_first_vault_write_keeps_the_values_of_the_cluster_secrets() -> None:
    """Switching kubernetes -> vault: Vault is empty, the Secrets' values move in unchanged."""
    spec = _spec(secrets=VAULT, gateway=GATEWAY)
    before = generated.complete(spec, current=generated.GeneratedSecrets(), token=_counter())
    result = vault_kv.plan(spec, {"weaviate-api-key": "in-vault"}, token=_counter(), seed=before)
    assert result.secrets.weaviate_api_key == "in-vault"  # the store wins
    assert result.secrets.redis_passwords == before.redis_passwords
    assert result.secrets.consumer_keys == before.consumer_keys
    assert result.additions["redis-app-password"] == before.redis_password("redis-app")


def _external_secret_live(*conditions: dict[str, str]) -> dict[str, Any]:
    live = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "demo-internal-auth", "namespace": "ns1", "managedFields": [{}]},
        "spec": {"refreshInterval": "60s"},
        "status": {"conditions": list(conditions), "refreshTime": "2026-12-02T00:00:00Z"},
    }
    return trim(live)


def test_a_failing_external_secret_is_a_degraded_finding_with_esos_reason() -> None:
    spec = _spec(secrets={"provider": "externalSecrets",
                          "externalSecrets": {"storeRef": {"name": "s"}}})  # fmt: skip
    objs = build_all(spec, NAMES, secrets=placeholders(spec), prometheus_operator=False,
                     external_secrets=True)  # fmt: skip
    failing = _external_secret_live(
        {"type": "Ready", "status": "False", "reason": "SecretSyncedError",
         "message": "could not get secret data from provider", "lastTransitionTime": "x"},
    )  # fmt: skip
    # The cache keeps the Ready condition (and nothing else of status).
    reason, message = "SecretSyncedError", "could not get secret data from provider"
    kept = {"type": "Ready", "status": "False", "reason": reason, "message": message}
    assert failing["status"] == {"conditions": [kept]}
    by_name = {"demo-internal-auth": failing}

    def live(obj: dict[str, Any]) -> dict[str, Any] | None:
        return by_name.get(obj["metadata"]["name"])

    assert sync_findings(objs, live) == [
        ("ExternalSecretNotSynced", "ExternalSecret/demo-internal-auth: SecretSyncedError: "
         "could not get secret data from provider")
    ]  # fmt: skip
    by_name["demo-internal-auth"] = _external_secret_live({"type": "Ready", "status": "True"})
    assert sync_findings(objs, live) == []
    by_name["demo-internal-auth"] = _external_secret_live()  # not reconciled by ESO yet
    assert sync_findings(objs, live) == []

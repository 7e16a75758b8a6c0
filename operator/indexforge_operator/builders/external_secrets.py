"""The externalSecrets provider: ExternalSecrets (and a SecretStore) instead of generated Secrets.

The operator generates nothing. It builds every object as for the kubernetes provider, but
with ``placeholders``: each generated value is an External Secrets template expression reading
the key of the instance's store entry (``vault_kv`` lists the keys users must seed). Every
Secret that then carries a placeholder becomes an ExternalSecret of the same name whose
``target.template`` holds that Secret's data, so ESO produces exactly the Secret names, keys
and derived files (redis requirepass files, Kong's kong.yml, RabbitMQ's conf.d) the pods
already read. Pods and every other object are unchanged.

A store value a generated file cannot carry (a quote would end kong.yml's quoted string, a
space would split a Redis ACL line) must not reach a pod: every template starts with a check
per store key it reads (``checks``) that fails the render with the key's name, so ESO keeps
the previous Secret and reports Ready=False, which the operator turns into a Degraded
``ExternalSecretNotSynced`` (``sync_findings``).

Known limit: the operator does not see the values, so pod config checksums cover the
templates, not the values: a value changed in the store reaches the Secret on ESO's next
refresh, but a process that reads it only at start (Kong's declarative config, Redis
requirepass) needs a rollout (``kubectl rollout restart``) to use it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from .. import generated, vault_kv
from ..naming import Names
from ..spec import IndexForgeSpec
from .common import Obj, meta

API_VERSION = "external-secrets.io/v1"
KINDS = ("SecretStore", "ExternalSecret")
# Marks an ESO template expression in built Secret data.
MARK = "{{ index . "


def ref(key: str) -> str:
    """ESO template expression for one key of the store entry (keys contain dashes)."""
    return f'{MARK}"{key}" }}}}'


# Kong sends the newest gateway token: the first line of the stored list.
FIRST_GATEWAY_TOKEN = (
    f'{{{{ index . "{generated.GATEWAY_TOKENS_KEY}" | splitList "\\n" | first }}}}'
)


_READS = re.compile(re.escape(MARK) + r'"([^"]+)"')


def checks(template: str) -> str:
    """Template actions (no output) failing the render when a store key ``template`` reads is
    missing or breaks ``vault_kv.value_pattern``; the message names the key, never the value.
    The pattern goes in a Go raw string (it has no backtick); the message holds no quote."""
    out = []
    for key in sorted(set(_READS.findall(template))):
        why = f"store key {key} is missing or empty, or {vault_kv.UNSAFE_WHY}"
        out.append(
            f'{{{{ if not (regexMatch `^{vault_kv.value_pattern(key)}$` (index . "{key}")) }}}}'
            f'{{{{ fail "{why}" }}}}{{{{ end }}}}'
        )
    return "".join(out)


def placeholders(spec: IndexForgeSpec) -> generated.GeneratedSecrets:
    """``GeneratedSecrets`` whose every value is a template reading the store entry."""
    messaging = spec.messaging.enabled
    return generated.GeneratedSecrets(
        consumer_keys=MappingProxyType(
            {u: ref(vault_kv.consumer_key(u)) for u in generated.required_consumers(spec)}
        ),
        grafana_admin_password=ref(vault_kv.GRAFANA_PASSWORD)
        if generated.needs_grafana_password(spec)
        else "",
        gateway_tokens=(FIRST_GATEWAY_TOKEN,),
        redis_passwords=MappingProxyType(
            {i: ref(generated.redis_password_key(i)) for i in generated.REDIS_INSTANCES}
        ),
        weaviate_api_key=ref(generated.WEAVIATE_API_KEY_KEY),
        rabbitmq_password=ref(generated.RABBITMQ_PASSWORD_KEY) if messaging else "",
        erlang_cookie=ref(generated.RABBITMQ_COOKIE_KEY) if messaging else "",
    )


def _templated(obj: Obj) -> dict[str, str] | None:
    """Decoded data of a built Secret that carries placeholders (None: a plain Secret)."""
    if obj.get("kind") != "Secret":
        return None
    data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return data if any(MARK in v for v in data.values()) else None


def _store_ref(spec: IndexForgeSpec, names: Names) -> Obj:
    ref_spec = spec.secrets.external_secrets.store_ref
    if ref_spec is not None:
        return {"name": ref_spec.name, "kind": ref_spec.kind}
    return {"name": names.secret_store, "kind": "SecretStore"}


def external_secret(spec: IndexForgeSpec, names: Names, secret: Obj, data: dict[str, str]) -> Obj:
    """The ExternalSecret producing ``secret`` (same name, labels, keys) from the store."""
    if generated.GATEWAY_TOKENS_KEY in data:  # the whole list, not only Kong's first token
        data = {**data, generated.GATEWAY_TOKENS_KEY: ref(generated.GATEWAY_TOKENS_KEY) + "\n"}
    name = secret["metadata"]["name"]
    labels = secret["metadata"].get("labels") or {}
    return {
        "apiVersion": API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": names.namespace, "labels": dict(labels)},
        "spec": {
            "refreshInterval": f"{spec.secrets.vault.refresh_seconds}s",
            "secretStoreRef": _store_ref(spec, names),
            "target": {
                "name": name,
                # Owned by the ExternalSecret, which the IndexForge owns: GC removes both.
                "creationPolicy": "Owner",
                "deletionPolicy": "Retain",
                "template": {
                    "engineVersion": "v2",
                    "type": secret.get("type", "Opaque"),
                    "metadata": {"labels": dict(labels)},
                    "data": {k: checks(v) + v for k, v in sorted(data.items())},
                },
            },
            "dataFrom": [{"extract": {"key": vault_kv.kv_path(spec, names)}}],
        },
    }


def build_secret_store(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    """SecretStore (vault provider, Kubernetes auth as its own ServiceAccount), unless the
    spec references an existing store."""
    if spec.secrets.external_secrets.store_ref is not None:
        return []
    vault = spec.secrets.vault
    provider: dict[str, Any] = {
        "server": vault.address,
        "path": vault.mount,
        "version": "v2",
        "auth": {
            "kubernetes": {
                "mountPath": vault.auth_mount,
                "role": vault.role,
                "serviceAccountRef": {"name": names.secret_store},
            }
        },
    }
    if vault.namespace:
        provider["namespace"] = vault.namespace
    if vault.ca_secret_ref is not None:
        provider["caProvider"] = {
            "type": "Secret",
            "name": vault.ca_secret_ref.name,
            "key": vault.ca_secret_ref.key,
        }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(names, None, names.secret_store),
        # ESO requests a token for it (TokenRequest); no pod runs as it.
        "automountServiceAccountToken": False,
    }
    store = {
        "apiVersion": API_VERSION,
        "kind": "SecretStore",
        "metadata": meta(names, None, names.secret_store),
        "spec": {"provider": {"vault": provider}},
    }
    return [account, store]


def convert(spec: IndexForgeSpec, names: Names, objs: list[Obj]) -> list[Obj]:
    """``objs`` built with ``placeholders``: templated Secrets become ExternalSecrets, plus
    the SecretStore."""
    out: list[Obj] = []
    for obj in objs:
        data = _templated(obj)
        out.append(obj if data is None else external_secret(spec, names, obj, data))
    return [*out, *build_secret_store(spec, names)]


NOT_SYNCED = "ExternalSecretNotSynced"


def sync_findings(desired: list[Obj], live: Callable[[Obj], Obj | None]) -> list[tuple[str, str]]:
    """Degraded findings for ExternalSecrets that External Secrets reports as failing.

    Without this the only symptom of a wrong store, path or permission is pods stuck in
    ContainerCreating (their Secret never appears); ESO's own Ready condition says why. One
    not yet reconciled (no condition) is no finding: the components' conditions show the wait.
    """
    found: list[tuple[str, str]] = []
    for obj in desired:
        if obj.get("kind") != "ExternalSecret":
            continue
        current = live(obj) or {}
        for cond in (current.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") == "False":
                why = ": ".join(str(cond[k]) for k in ("reason", "message") if cond.get(k))
                name = obj["metadata"]["name"]
                found.append((NOT_SYNCED, f"ExternalSecret/{name}: {why or 'not ready'}"))
    return found

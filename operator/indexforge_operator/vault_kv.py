"""Pure side of the vault and externalSecrets providers: where an instance's values live in
the store and how they map to ``GeneratedSecrets``.

One KV secret per IndexForge at ``<pathPrefix>/<namespace>/<name>``, so two instances (even of
one namespace) never share a value. Its keys (users seeding a store for externalSecrets write
exactly these; README "Secrets providers"):

    consumer-<username>       Kong key-auth key of one consumer
    gateway-tokens            gateway-to-service tokens, newline-separated, newest first
    weaviate-api-key          Weaviate API key
    redis-app-password        (and redis-ml-password, redis-state-password)
    grafana-admin-password    Grafana admin password (monitoring.grafana on)
    rabbitmq-password         RabbitMQ default user's password (messaging on)
    rabbitmq-erlang-cookie    Erlang cookie of the RabbitMQ nodes (messaging on)

Reading goes through ``generated.from_secret_data`` (the kubernetes provider's parser), so a
value format the provider changes there changes here too.

Values users seed must be usable verbatim in the files built from them: Redis ACL lines and
RabbitMQ's conf take them unquoted, kong.yml single-quoted. ``SAFE_VALUE`` is that rule (no
whitespace or control characters, no quotes, backslash, ``#`` or backtick); our generated
tokens always pass it. It is one regular expression that Python and Go (RE2: External Secrets'
templates) read the same way.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import generated
from .naming import Names
from .spec import IndexForgeSpec

CONSUMER_PREFIX = "consumer-"
GRAFANA_PASSWORD = "grafana-admin-password"
INTERNAL_KEYS = (
    generated.GATEWAY_TOKENS_KEY,
    generated.WEAVIATE_API_KEY_KEY,
    *(generated.redis_password_key(i) for i in generated.REDIS_INSTANCES),
    generated.RABBITMQ_PASSWORD_KEY,
    generated.RABBITMQ_COOKIE_KEY,
)


# One value; gateway-tokens is several such lines. Hex escapes only: no quote or backtick in
# the pattern itself, so it fits unchanged in a Go raw string (external_secrets.checks).
SAFE_VALUE = r"[^\x00-\x20\x7f\x22\x27\x5c\x60#]+"
SAFE_LINES = rf"{SAFE_VALUE}(\n{SAFE_VALUE})*\n?"
UNSAFE_WHY = (
    "holds whitespace, a control character, a quote, a backslash, # or a backtick, which the "
    "generated config files cannot carry"
)


def value_pattern(key: str) -> str:
    """The whole-value pattern for one store key (the tokens list is one value per line)."""
    return SAFE_LINES if key == generated.GATEWAY_TOKENS_KEY else SAFE_VALUE


def used_key(key: str) -> bool:
    """Is ``key`` one the builders read (other keys in the entry are left alone)?"""
    return key in INTERNAL_KEYS or key == GRAFANA_PASSWORD or key.startswith(CONSUMER_PREFIX)


def unusable_keys(stored: Mapping[str, str]) -> list[str]:
    """Keys of a store entry whose non-empty value breaks ``value_pattern`` (never the
    values: this ends up in status and Events). Empty values count as missing elsewhere."""
    return sorted(
        k for k, v in stored.items()
        if used_key(k) and v and not re.fullmatch(value_pattern(k), v)
    )  # fmt: skip


def kv_path(spec: IndexForgeSpec, names: Names) -> str:
    """Path of the instance's KV secret inside the mount (externalSecrets may override it)."""
    override = spec.secrets.external_secrets.remote_key
    if spec.secrets.provider == "externalSecrets" and override:
        return override
    return f"{spec.secrets.vault.path_prefix}/{names.namespace}/{names.instance}"


def consumer_key(username: str) -> str:
    return f"{CONSUMER_PREFIX}{username}"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def from_kv(data: Mapping[str, str]) -> generated.GeneratedSecrets:
    """The values stored in the KV secret (empty ones count as missing)."""
    consumers = {
        key.removeprefix(CONSUMER_PREFIX): _b64(value)
        for key, value in data.items()
        if key.startswith(CONSUMER_PREFIX) and value
    }
    grafana = (
        {generated.GRAFANA_PASSWORD_KEY: _b64(data[GRAFANA_PASSWORD])}
        if data.get(GRAFANA_PASSWORD)
        else {}
    )
    internal = {key: _b64(data[key]) for key in INTERNAL_KEYS if data.get(key)}
    return generated.from_secret_data(consumers=consumers, grafana=grafana, internal=internal)


def to_kv(secrets: generated.GeneratedSecrets) -> dict[str, str]:
    """The KV form of generated values (empty values left out)."""
    out = {consumer_key(user): key for user, key in secrets.consumer_keys.items()}
    out[GRAFANA_PASSWORD] = secrets.grafana_admin_password
    out[generated.GATEWAY_TOKENS_KEY] = "\n".join(secrets.gateway_tokens)
    out[generated.WEAVIATE_API_KEY_KEY] = secrets.weaviate_api_key
    for instance in generated.REDIS_INSTANCES:
        out[generated.redis_password_key(instance)] = secrets.redis_password(instance)
    out[generated.RABBITMQ_PASSWORD_KEY] = secrets.rabbitmq_password
    out[generated.RABBITMQ_COOKIE_KEY] = secrets.erlang_cookie
    return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class Plan:
    """What a pass does with the store: ``additions`` to write (empty: write nothing) and the
    values the builders get. Never log or report it (repr hides the values)."""

    additions: Mapping[str, str]
    secrets: generated.GeneratedSecrets

    def __repr__(self) -> str:
        return f"Plan(additions={sorted(self.additions)}, values=<hidden>)"


def plan(
    spec: IndexForgeSpec,
    stored: Mapping[str, str],
    *,
    token: Callable[[], str],
    seed: generated.GeneratedSecrets | None = None,
) -> Plan:
    """Keep every stored value; generate only what the spec needs and the store lacks.

    ``seed``: values already in the cluster's Secrets (an instance switching from the
    kubernetes provider): a key the store lacks takes the seed's value before a new one is
    generated, so the switch changes no credential. Stored values always win.
    Keys the spec no longer needs (a removed consumer) stay in the store: the store is the
    source of truth and nothing there is deleted by the operator.
    """
    known = {**(to_kv(seed) if seed is not None else {}), **{k: v for k, v in stored.items() if v}}
    wanted = to_kv(generated.complete(spec, current=from_kv(known), token=token))
    additions = {k: v for k, v in wanted.items() if not stored.get(k)}
    merged = {**stored, **additions}
    secrets = generated.complete(spec, current=from_kv(merged), token=_no_token)
    return Plan(additions=additions, secrets=secrets)


def _no_token() -> str:
    raise AssertionError("every value was generated before; nothing may be generated twice")

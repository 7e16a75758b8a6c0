"""Secret values the operator generates once and keeps: Kong consumer keys, the Grafana
password, and the internal credentials (gateway-to-service tokens, Redis passwords, the
Weaviate API key) that authenticate every hop behind the NetworkPolicies.

Builders never generate anything: they receive a `GeneratedSecrets`. The reconciler reads the
values already stored in the cluster (`from_secret_data`), fills in what is missing
(`complete`, with a token function supplied by the caller) and passes the result on, so the
same keys survive every reconcile and a restart of the operator.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .spec import IndexForgeSpec

GRAFANA_USER_KEY = "admin-user"
GRAFANA_PASSWORD_KEY = "admin-password"
# Keys of the internal-auth Secret. Gateway tokens are newline-separated, newest first: the
# services accept every listed token and Kong sends the first, so a rotation can overlap.
GATEWAY_TOKENS_KEY = "gateway-tokens"
WEAVIATE_API_KEY_KEY = "weaviate-api-key"
# Every key Weaviate accepts, comma-separated, newest first (its AUTHENTICATION_APIKEY_ALLOWED_KEYS
# while a rotation overlaps two, weaviate_rotation.py); the key alone otherwise.
WEAVIATE_API_KEYS_KEY = "weaviate-api-keys"
RABBITMQ_PASSWORD_KEY = "rabbitmq-password"
RABBITMQ_COOKIE_KEY = "rabbitmq-erlang-cookie"
REDIS_INSTANCES = ("redis-app", "redis-ml", "redis-state")


def redis_password_key(instance: str) -> str:
    """The password clients use now (the services' mounted file)."""
    return f"{instance}-password"


def redis_passwords_key(instance: str) -> str:
    """Every password the Redis accepts, newest first, one a line (its ACL sync sidecar)."""
    return f"{instance}-passwords"


@dataclass(frozen=True)
class GeneratedSecrets:
    """Generated credentials of one instance. Never log or put these in status/events."""

    consumer_keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    grafana_admin_password: str = ""
    gateway_tokens: tuple[str, ...] = ()
    redis_passwords: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    weaviate_api_key: str = ""
    # RabbitMQ's default user and the Erlang cookie its nodes share (messaging enabled).
    rabbitmq_password: str = ""
    erlang_cookie: str = ""
    # Every key Kong accepts per consumer, oldest first, while a rotation overlaps two keys
    # (rotation.py); a consumer not listed here has exactly its `consumer_keys` key.
    consumer_credentials: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # Every password a Redis accepts, newest first, while a rotation overlaps two
    # (redis_rotation.py); an instance not listed accepts exactly its `redis_passwords` one.
    redis_accepted: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # Every key Weaviate accepts, newest first, while a rotation overlaps two
    # (weaviate_rotation.py); empty outside one: Weaviate accepts `weaviate_api_key` alone.
    weaviate_accepted: tuple[str, ...] = ()

    def __repr__(self) -> str:  # keeps keys out of tracebacks and debug logs
        return f"GeneratedSecrets(consumers={sorted(self.consumer_keys)}, values=<hidden>)"

    def redis_password(self, instance: str) -> str:
        return self.redis_passwords.get(instance, "")

    def redis_accepted_passwords(self, instance: str) -> tuple[str, ...]:
        """Passwords the Redis accepts, newest first (the current one outside a rotation)."""
        listed = self.redis_accepted.get(instance)
        if listed:
            return listed
        password = self.redis_password(instance)
        return (password,) if password else ()

    def accepted_keys(self, username: str) -> tuple[str, ...]:
        """Keys Kong accepts for a consumer, oldest first (one outside a rotation)."""
        keys = self.consumer_credentials.get(username)
        if keys:
            return keys
        key = self.consumer_keys.get(username)
        return (key,) if key else ()


def weaviate_keys_value(keys: tuple[str, ...]) -> str:
    """AUTHENTICATION_APIKEY_ALLOWED_KEYS for ``keys``. Weaviate splits the variable on commas
    and keeps everything else (a space becomes part of a key), and refuses to start on an empty
    key: a list it would misread is refused here, before any pod restarts with it."""
    if not keys:
        raise ValueError("Weaviate needs at least one API key")
    for key in keys:
        if not key or key != key.strip() or any(c in key for c in ",\n\r\t "):
            raise ValueError(
                "a Weaviate API key must be non-empty, without commas or whitespace "
                f"(Weaviate splits its key list on commas): {len(key)} characters refused"
            )
    if len(set(keys)) != len(keys):
        raise ValueError("the Weaviate key list names one key twice")
    return ",".join(keys)


def required_consumers(spec: IndexForgeSpec) -> list[str]:
    """Consumers that need a key under this spec."""
    auth = spec.gateway.key_auth
    if not (spec.gateway.enabled and auth.enabled):
        return []
    return [c.username for c in auth.consumers]


def needs_grafana_password(spec: IndexForgeSpec) -> bool:
    return spec.monitoring.enabled and spec.monitoring.grafana.enabled


def complete(
    spec: IndexForgeSpec, *, current: GeneratedSecrets, token: Callable[[], str]
) -> GeneratedSecrets:
    """`current` plus a fresh token for every missing value; keys of removed consumers go."""
    keys = {user: current.consumer_keys.get(user) or token() for user in required_consumers(spec)}
    password = current.grafana_admin_password
    if needs_grafana_password(spec) and not password:
        password = token()
    # Always: without the gateway the API still authenticates itself to ML and Excel with it.
    tokens = current.gateway_tokens or (token(),)
    redis = {name: current.redis_password(name) or token() for name in REDIS_INSTANCES}
    # Kept once generated: switching messaging off and on again must not change them (a
    # node's database keeps the first default user; the cookie must match its peers').
    messaging = spec.messaging.enabled
    rabbitmq_password = current.rabbitmq_password or (token() if messaging else "")
    cookie = current.erlang_cookie or (token() if messaging else "")
    return GeneratedSecrets(
        consumer_keys=MappingProxyType(keys),
        grafana_admin_password=password,
        gateway_tokens=tokens,
        redis_passwords=MappingProxyType(redis),
        weaviate_api_key=current.weaviate_api_key or token(),
        rabbitmq_password=rabbitmq_password,
        erlang_cookie=cookie,
    )


def _decode(data: Mapping[str, str] | None, key: str) -> str:
    if not data or key not in data:
        return ""
    return base64.b64decode(data[key]).decode()


def from_secret_data(
    *,
    consumers: Mapping[str, str] | None,
    grafana: Mapping[str, str] | None,
    internal: Mapping[str, str] | None = None,
) -> GeneratedSecrets:
    """Values from the `.data` (base64) of the existing Secrets; None for a missing Secret."""
    keys = {user: _decode(consumers, user) for user in (consumers or {})}
    tokens = tuple(t for t in _decode(internal, GATEWAY_TOKENS_KEY).splitlines() if t)
    redis = {name: _decode(internal, redis_password_key(name)) for name in REDIS_INSTANCES}
    return GeneratedSecrets(
        consumer_keys=MappingProxyType({u: k for u, k in keys.items() if k}),
        grafana_admin_password=_decode(grafana, GRAFANA_PASSWORD_KEY),
        gateway_tokens=tokens,
        redis_passwords=MappingProxyType({n: p for n, p in redis.items() if p}),
        weaviate_api_key=_decode(internal, WEAVIATE_API_KEY_KEY),
        rabbitmq_password=_decode(internal, RABBITMQ_PASSWORD_KEY),
        erlang_cookie=_decode(internal, RABBITMQ_COOKIE_KEY),
    )

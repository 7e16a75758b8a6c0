"""Secret values the operator generates once and keeps (Kong consumer keys, Grafana password).

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


@dataclass(frozen=True)
class GeneratedSecrets:
    """Generated credentials of one instance. Never log or put these in status/events."""

    consumer_keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    grafana_admin_password: str = ""

    def __repr__(self) -> str:  # keeps keys out of tracebacks and debug logs
        return f"GeneratedSecrets(consumers={sorted(self.consumer_keys)}, grafana=<hidden>)"


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
    return GeneratedSecrets(consumer_keys=MappingProxyType(keys), grafana_admin_password=password)


def _decode(data: Mapping[str, str] | None, key: str) -> str:
    if not data or key not in data:
        return ""
    return base64.b64decode(data[key]).decode()


def from_secret_data(
    *, consumers: Mapping[str, str] | None, grafana: Mapping[str, str] | None
) -> GeneratedSecrets:
    """Values from the `.data` (base64) of the existing Secrets; None for a missing Secret."""
    keys = {user: _decode(consumers, user) for user in (consumers or {})}
    return GeneratedSecrets(
        consumer_keys=MappingProxyType({u: k for u, k in keys.items() if k}),
        grafana_admin_password=_decode(grafana, GRAFANA_PASSWORD_KEY),
    )

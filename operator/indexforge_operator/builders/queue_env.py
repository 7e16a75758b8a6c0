"""How the API and the workers reach the broker, whichever provider runs it.

Both providers give a client Service `<name>-rabbitmq` on 5672 and a Secret with the user's
name and password (built-in: the internal-auth Secret; the RabbitMQ cluster operator's:
`<name>-rabbitmq-default-user`, keys `username`/`password`, or with the topology operator
the application user's `<name>-rabbitmq-app-user`, same keys). The kubelet assembles the AMQP
URL from them (`$(VAR)` expansion), so no URL with a password is stored anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..decisions import uses_cluster_operator, uses_topology_operator
from ..generated import RABBITMQ_PASSWORD_KEY
from ..naming import Names
from ..queues import QUEUE_PREFIX, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS
from ..spec import IndexForgeSpec
from . import ports
from .common import Obj, env
from .credentials import RABBITMQ_USERNAME_KEY
from .rabbitmq_topology import PASSWORD_KEY, USERNAME_KEY, app_user_secret_name

USERNAME_ENV = "AMQP_USERNAME"
PASSWORD_ENV = "AMQP_PASSWORD"


@dataclass(frozen=True)
class BrokerSecret:
    """Where the broker user's credentials are."""

    name: str
    username_key: str
    password_key: str


def broker_secret(spec: IndexForgeSpec, names: Names) -> BrokerSecret:
    if uses_topology_operator(spec):
        return BrokerSecret(app_user_secret_name(names), USERNAME_KEY, PASSWORD_KEY)
    if uses_cluster_operator(spec):
        return BrokerSecret(f"{names.component('rabbitmq')}-default-user", "username", "password")
    return BrokerSecret(names.internal_auth, RABBITMQ_USERNAME_KEY, RABBITMQ_PASSWORD_KEY)


def broker_host(names: Names) -> str:
    return f"{names.fqdn(names.component('rabbitmq'))}:{ports.RABBITMQ_AMQP}"


def _secret_ref(variable: str, secret: BrokerSecret, key: str) -> Obj:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": key}}}


def queue_env(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    """What the API and the workers need to publish and consume (messaging enabled; the
    spec's provider resolved, see decisions.resolve_integrations)."""
    secret = broker_secret(spec, names)
    workers = spec.messaging.workers
    return [
        _secret_ref(USERNAME_ENV, secret, secret.username_key),
        _secret_ref(PASSWORD_ENV, secret, secret.password_key),
        # Expanded by the kubelet from the two variables above (defined before it).
        env(
            "INDEXFORGE_AMQP_URL",
            f"amqp://$({USERNAME_ENV}):$({PASSWORD_ENV})@{broker_host(names)}/",
        ),
        env("INDEXFORGE_INGEST_MODE", "queue"),
        env("INDEXFORGE_QUEUE_PREFIX", QUEUE_PREFIX),
        env("INDEXFORGE_QUEUE_PREFETCH", workers.prefetch),
        env("INDEXFORGE_QUEUE_MAX_ATTEMPTS", workers.max_attempts),
        # Explicit: the topology operator's retry queues are named after these delays.
        env("INDEXFORGE_QUEUE_RETRY_BASE_SECONDS", RETRY_BASE_SECONDS),
        env("INDEXFORGE_QUEUE_RETRY_MAX_SECONDS", RETRY_MAX_SECONDS),
    ]

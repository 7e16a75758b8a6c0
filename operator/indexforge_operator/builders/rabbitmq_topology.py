"""The ingestion topology as objects of the RabbitMQ messaging topology operator.

With a RabbitmqCluster and the topology operator installed (`messaging.topology`), the
exchange, the queues and their bindings are Kubernetes objects (visible, diffable, owned by
the IndexForge) instead of being declared by whichever service connects first, and the
services no longer connect as the cluster's default user (an administrator): they get an
application User whose Permission covers only the ingestion objects (`indexforge.*`) and
the default exchange, which retries and dead letters are published to.

The objects mirror what the services declare (services/messaging/topology.py, through the
constants in queues.py): a queue declared with other arguments is refused by the broker
(PRECONDITION_FAILED), so the services keep declaring too, idempotently, and both must agree.
Retry queues are listed for every delay the workers' attempts can use.
"""

from __future__ import annotations

import re

from ..generated import GeneratedSecrets
from ..naming import Names
from ..queues import (
    DEAD_LETTER_QUEUE,
    DELIVERY_LIMIT,
    EXCHANGE,
    INGEST_QUEUE,
    INGEST_REQUESTED,
    JOB_OUTCOMES,
    JOBS_QUEUE,
    QUEUE_PREFIX,
    retry_delays_ms,
    retry_queue,
)
from ..spec import IndexForgeSpec
from .common import Obj, meta, secret

API_VERSION = "rabbitmq.com/v1beta1"
TOPOLOGY_KINDS = ("User", "Permission", "Exchange", "Queue", "Binding")
VHOST = "/"
# Keys the topology operator reads from importCredentialsSecret.
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
APP_USER = "indexforge-app"
_OURS = rf"^{re.escape(QUEUE_PREFIX)}\..*"


def app_user_secret_name(names: Names) -> str:
    return f"{names.component('rabbitmq')}-app-user"


def permission_rules() -> Obj:
    """configure/read: our exchange and queues; write: those plus the default exchange."""
    return {"configure": _OURS, "read": _OURS, "write": rf"{_OURS}|^amq\.default$"}


def _object(names: Names, kind: str, name: str, spec: Obj) -> Obj:
    reference = {"rabbitmqClusterReference": {"name": names.component("rabbitmq")}}
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": meta(names, "rabbitmq", f"{names.component('rabbitmq')}-{name}"),
        "spec": {**spec, **reference},
    }


def _slug(name: str) -> str:
    """Object name part of a RabbitMQ name: `indexforge.ingest.dead` -> `ingest-dead`."""
    return name.removeprefix(f"{QUEUE_PREFIX}.").replace(".", "-")


def _queue(names: Names, name: str, arguments: Obj) -> Obj:
    spec = {"name": name, "vhost": VHOST, "type": "quorum", "durable": True}
    if arguments:
        spec["arguments"] = arguments
    return _object(names, "Queue", f"queue-{_slug(name)}", spec)


def _dead_lettered(target: str) -> Obj:
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target}


def _binding(names: Names, queue: str, routing_key: str) -> Obj:
    spec = {
        "vhost": VHOST,
        "source": EXCHANGE,
        "destination": queue,
        "destinationType": "queue",
        "routingKey": routing_key,
    }
    return _object(
        names, "Binding", f"binding-{_slug(queue)}-{routing_key.replace('.', '-')}", spec
    )


def build_rabbitmq_topology(
    spec: IndexForgeSpec, names: Names, *, secrets: GeneratedSecrets
) -> list[Obj]:
    """The application user (its Secret, User, Permission), the exchange, queues, bindings."""
    bounded = {"x-delivery-limit": DELIVERY_LIMIT, **_dead_lettered(DEAD_LETTER_QUEUE)}
    user_secret = app_user_secret_name(names)
    objs = [
        secret(
            names,
            "rabbitmq",
            user_secret,
            {USERNAME_KEY: APP_USER, PASSWORD_KEY: secrets.rabbitmq_password},
        ),
        _object(names, "User", "app-user", {"importCredentialsSecret": {"name": user_secret}}),
        _object(
            names,
            "Permission",
            "app-user",
            {
                "vhost": VHOST,
                "userReference": {"name": user_secret},  # the User's name, as the Secret's
                "permissions": permission_rules(),
            },
        ),
        _object(
            names,
            "Exchange",
            "exchange-events",
            {"name": EXCHANGE, "vhost": VHOST, "type": "topic", "durable": True},
        ),
        _queue(names, DEAD_LETTER_QUEUE, {}),
        _queue(names, INGEST_QUEUE, bounded),
        _queue(names, JOBS_QUEUE, bounded),
        _binding(names, INGEST_QUEUE, INGEST_REQUESTED),
        *(_binding(names, JOBS_QUEUE, outcome) for outcome in JOB_OUTCOMES),
    ]
    for delay in retry_delays_ms(spec.messaging.workers.max_attempts):
        arguments = {"x-message-ttl": delay, **_dead_lettered(INGEST_QUEUE)}
        objs.append(_queue(names, retry_queue(delay), arguments))
    return objs

"""kopf wiring only: watches feed the caches and the work queue; ``controller.py`` does the rest.

- kopf indexes are the informer cache: every IndexForge, every child carrying our managed-by
  label (trimmed, see ``children.py``) and the optional-integration CRDs. kopf fills them from
  its initial listings before it calls any event handler, so no pass ever runs on an empty cache.
- Events map to queue adds: a CR change to that CR, a child change to its controller owner, a
  referenced Secret to the CRs in its namespace, an integration CRD to every CR.
- No finalizer, no per-CR daemon: deleting a CR never waits for the operator.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import socket
from typing import Any

import kopf
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from indexforge_operator import (
    kopf_compat,
    metrics,
    on_demand,
    redis_rotation,
    rotation,
    weaviate_rotation,
)
from indexforge_operator.children import ChildView, cached_form
from indexforge_operator.controller import Controller, Key, Timing
from indexforge_operator.events import EventRecorder
from indexforge_operator.kube import RESOURCES, Kube
from indexforge_operator.leader import LeaderElector, LeaseConfig
from indexforge_operator.naming import LABEL_MANAGED_BY, MANAGED_BY
from indexforge_operator.reconciler import GROUP, PAUSED_ANNOTATION, PLURAL, VERSION

__all__ = ["GROUP", "INTEGRATION_CRDS", "lease_from_env", "timing_from_env"]

MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}
# CRDs whose presence switches an integration on (prometheus-operator: ServiceMonitors; its
# AlertmanagerConfig only when that CRD is installed too).
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
ALERTMANAGER_CONFIG_CRD = "alertmanagerconfigs.monitoring.coreos.com"
# The RabbitMQ cluster operator runs the broker; KEDA scales the workers on queue length.
RABBITMQ_CLUSTER_CRD = "rabbitmqclusters.rabbitmq.com"
SCALED_OBJECT_CRD = "scaledobjects.keda.sh"
# The messaging topology operator (its Queue CRD stands for the set it installs together).
RABBITMQ_QUEUE_CRD = "queues.rabbitmq.com"
# Istio (its PeerAuthentication CRD stands for the security/networking set it installs).
ISTIO_CRD = "peerauthentications.security.istio.io"
# External Secrets Operator (secrets.provider externalSecrets): both kinds we create. Each is
# watched, so the pass that creates them runs once the later of the two is served.
EXTERNAL_SECRET_CRD = "externalsecrets.external-secrets.io"
SECRET_STORE_CRD = "secretstores.external-secrets.io"
INTEGRATION_CRDS = frozenset(
    {
        EXTERNAL_SECRET_CRD,
        SECRET_STORE_CRD,
        SERVICE_MONITOR_CRD,
        ALERTMANAGER_CONFIG_CRD,
        RABBITMQ_CLUSTER_CRD,
        SCALED_OBJECT_CRD,
        RABBITMQ_QUEUE_CRD,
        ISTIO_CRD,
    }
)
log = logging.getLogger("indexforge_operator")
# A deleted integration CRD must not stop the operator (see kopf_compat).
kopf_compat.install()


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def timing_from_env() -> Timing:
    return Timing(
        resync=_env_float("INDEXFORGE_RESYNC_SECONDS", 600),
        progressing_requeue=_env_float("INDEXFORGE_PROGRESSING_REQUEUE_SECONDS", 10),
        workers=int(_env_float("INDEXFORGE_WORKERS", 4)),
    )


def lease_from_env() -> LeaseConfig | None:
    """Leader election is on when a Lease namespace is known (in a pod: its own namespace)."""
    namespace = os.environ.get("INDEXFORGE_LEADER_ELECTION_NAMESPACE", "")
    if not namespace or os.environ.get("INDEXFORGE_LEADER_ELECTION", "true") == "false":
        return None
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    return LeaseConfig(
        namespace=namespace,
        name=os.environ.get("INDEXFORGE_LEADER_ELECTION_NAME", "indexforge-operator"),
        identity=identity,
        duration=_env_float("INDEXFORGE_LEASE_SECONDS", 15),
        renew_deadline=_env_float("INDEXFORGE_RENEW_DEADLINE_SECONDS", 10),
        retry=_env_float("INDEXFORGE_LEASE_RETRY_SECONDS", 2),
    )


def _api_client() -> k8s.ApiClient:
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()


# -- caches ---------------------------------------------------------------------------------
@kopf.index(GROUP, VERSION, PLURAL, id="indexforges")
async def index_indexforge(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace or "", name): copy.deepcopy(dict(body))}


async def index_child(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    return {namespace or "": cached_form(copy.deepcopy(dict(body)))}


async def index_crd(name: str, **_: Any) -> Any:
    return {name: True}


for _res in RESOURCES:
    _group, _, _version = _res.api_version.rpartition("/")
    kopf.index(_group, _version, _res.plural, labels=MANAGED, id="children")(index_child)

kopf.index(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    id="integrations",
    when=lambda name, **_: name in INTEGRATION_CRDS,
)(index_crd)


def _count(index: kopf.Index[str, Any]) -> float:
    """Objects in an index, read from the metrics thread while the loop may be updating it."""
    try:
        return float(sum(len(store) for store in list(index.values())))
    except RuntimeError:  # changed size during iteration: the next scrape gets it
        return float("nan")


# -- lifecycle ------------------------------------------------------------------------------
@kopf.on.startup()
async def start(
    settings: kopf.OperatorSettings, memo: Any, logger: kopf.Logger, **kwargs: Any
) -> None:
    settings.posting.enabled = False  # Events come from our recorder, aggregated
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # The server ends each watch after 5 min and kopf resumes it; the client timeout drops a
    # half-open connection the server can no longer end.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10

    indexforges: kopf.Index[Key, Any] = kwargs["indexforges"]
    children: kopf.Index[str, Any] = kwargs["children"]
    integrations: kopf.Index[str, Any] = kwargs["integrations"]
    lease = lease_from_env()
    leading = asyncio.Event()
    kube = Kube(_api_client(), may_write=leading.is_set)

    def lookup(key: Key) -> Any:
        store = indexforges.get(key)
        return next(iter(store), None) if store else None

    controller = Controller(
        kube=kube,
        recorder=EventRecorder(kube),
        lookup=lookup,
        children=lambda ns: ChildView.of(list(children.get(ns, []))),
        prometheus_operator=lambda: SERVICE_MONITOR_CRD in integrations,
        known_keys=lambda: list(indexforges),
        alertmanager_configs=lambda: ALERTMANAGER_CONFIG_CRD in integrations,
        rabbitmq_cluster=lambda: RABBITMQ_CLUSTER_CRD in integrations,
        keda=lambda: SCALED_OBJECT_CRD in integrations,
        rabbitmq_topology=lambda: RABBITMQ_QUEUE_CRD in integrations,
        istio=lambda: ISTIO_CRD in integrations,
        external_secrets=lambda: (
            EXTERNAL_SECRET_CRD in integrations and SECRET_STORE_CRD in integrations
        ),
        timing=timing_from_env(),
        leading=leading,
    )
    metrics.CACHED_OBJECTS.set_function(lambda: _count(children))
    metrics.QUEUE_DEPTH.set_function(lambda: len(controller.queue))
    elector = LeaderElector(kube, lease) if lease else None
    memo.controller = controller
    memo.triggers = {}  # set here: kopf hands each object a shallow copy of this memo
    memo.tasks = [
        asyncio.create_task(controller.lead(elector)),
        asyncio.create_task(controller.resync_loop()),
        *(asyncio.create_task(controller.worker()) for _ in range(controller.timing.workers)),
    ]
    logger.info("started: %d workers, resync %.0fs, leader election %s",
                controller.timing.workers, controller.timing.resync,
                f"on Lease {lease.namespace}/{lease.name}" if lease else "off")  # fmt: skip


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    tasks: list[asyncio.Task[None]] = memo.get("tasks", [])
    for task in tasks:
        task.cancel()
    # The leader task releases the Lease on cancellation: give it a moment to do so.
    if tasks:
        await asyncio.wait(tasks, timeout=5)


# -- triggers -------------------------------------------------------------------------------
def _trigger(body: kopf.Body) -> tuple[Any, ...]:
    """What, when changed on a CR, calls for a pass (not our own status writes)."""
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    return (
        meta.get("generation"),
        annotations.get(PAUSED_ANNOTATION),
        *(annotations.get(a) for a in on_demand.ANNOTATIONS.values()),  # backup/restore requests
        annotations.get(rotation.ANNOTATION),  # key rotation requests
        annotations.get(redis_rotation.ANNOTATION),  # Redis password rotation requests
        annotations.get(weaviate_rotation.ANNOTATION),  # Weaviate API-key rotation requests
        meta.get("deletionTimestamp"),
        tuple(meta.get("finalizers") or ()),
        meta.get("uid"),
    )


@kopf.on.event(GROUP, VERSION, PLURAL)
async def indexforge_event(
    type: str, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    controller: Controller = memo.controller
    controller.caches_ready.set()
    key = (namespace or "", name)
    seen: dict[Key, tuple[Any, ...]] = memo.triggers
    if type == "DELETED":
        seen.pop(key, None)
        controller.forget(key)
        return
    trigger = _trigger(body)
    if seen.get(key) != trigger or type is None:  # None: initial listing
        seen[key] = trigger
        controller.enqueue(key)


async def child_event(namespace: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
    controller: Controller = memo.controller
    controller.caches_ready.set()
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "IndexForge":
            key = (namespace or "", str(ref.get("name")))
            controller.enqueue(key, delay=controller.timing.child_event_delay)


for _res in RESOURCES:
    _group, _, _version = _res.api_version.rpartition("/")
    kopf.on.event(_group, _version, _res.plural, labels=MANAGED, id="child")(child_event)


@kopf.on.event("", "v1", "secrets", labels={LABEL_MANAGED_BY: kopf.ABSENT}, id="user-secret")
async def user_secret_event(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    """A Secret a CR references (Sentry DSN, Alertmanager receivers) appeared, changed or
    went: re-check its CRs."""
    controller: Controller = memo.controller
    for key in controller.known_keys():
        body = controller.lookup(key) if key[0] == namespace else None
        spec = (body or {}).get("spec") or {}
        sentry = (spec.get("sentry") or {}).get("dsnSecretRef") or {}
        alerting = ((spec.get("monitoring") or {}).get("alertmanager") or {}).get(
            "receiversSecretRef"
        ) or {}
        if name in (sentry.get("name"), alerting.get("name")):
            controller.enqueue(key)


@kopf.on.event(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    when=lambda name, **_: name in INTEGRATION_CRDS,
)
async def integration_event(memo: Any, **_: Any) -> None:
    """An integration (prometheus-operator, RabbitMQ cluster operator, KEDA) installed or
    removed: every CR re-decides what it deploys."""
    controller: Controller = memo.controller
    controller.enqueue_all()

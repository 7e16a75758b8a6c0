"""The operator's own Prometheus metrics: how reconciles go, per pass and per instance."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "indexforge_operator_reconciles",
    "Reconcile passes, by result (ok, error).",
    ["result"],
)
RECONCILE_SECONDS = Histogram(
    "indexforge_operator_reconcile_duration_seconds",
    "Wall time of one reconcile pass.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
WRITES = Counter(
    "indexforge_operator_object_writes",
    "Child objects whose server-side apply changed something.",
)
PRUNED = Counter(
    "indexforge_operator_objects_pruned",
    "Child objects deleted because the spec no longer wants them.",
)
READY = Gauge(
    "indexforge_operator_instance_ready",
    "1 when the IndexForge's Ready condition is True.",
    ["namespace", "name"],
)

LEADER = Gauge(
    "indexforge_operator_leader",
    "1 while this replica holds the leader Lease (only the leader writes).",
)
API_REQUESTS = Counter(
    "indexforge_operator_api_requests",
    "Requests sent to the API server by passes, Events and leader election (kopf's watches "
    "not included), by HTTP verb and resource.",
    ["verb", "resource"],
)
CACHED_OBJECTS = Gauge(
    "indexforge_operator_cached_objects",
    "Child objects held in the watch cache.",
)
KEY_ROTATION_STUCK = Gauge(
    "indexforge_operator_key_rotation_stuck",
    "1 while a key rotation waits longer than rolloutTimeoutSeconds for the rollout that "
    "publishes the new key (credential gateway-key: Kong; weaviate-key: Weaviate's restarts).",
    ["namespace", "name", "credential"],
)
ROTATION_CREDENTIALS = ("gateway-key", "weaviate-key")
QUEUE_DEPTH = Gauge(
    "indexforge_operator_queue_depth",
    "IndexForges waiting for a reconcile pass.",
)


def record_pass(*, namespace: str, name: str, seconds: float, writes: int, pruned: int) -> None:
    RECONCILES.labels(result="ok").inc()
    RECONCILE_SECONDS.observe(seconds)
    WRITES.inc(writes)
    PRUNED.inc(pruned)


def set_ready(*, namespace: str, name: str, ready: bool) -> None:
    READY.labels(namespace=namespace, name=name).set(1 if ready else 0)


def set_rotation_stuck(*, namespace: str, name: str, credential: str, stuck: bool) -> None:
    KEY_ROTATION_STUCK.labels(namespace=namespace, name=name, credential=credential).set(
        1 if stuck else 0
    )


def record_failure() -> None:
    RECONCILES.labels(result="error").inc()


def forget(*, namespace: str, name: str) -> None:
    """Drop an instance's series once it is gone (no stale 0/1 for deleted CRs)."""
    with contextlib.suppress(KeyError):  # never recorded: nothing to drop
        READY.remove(namespace, name)
    for credential in ROTATION_CREDENTIALS:
        with contextlib.suppress(KeyError):
            KEY_ROTATION_STUCK.remove(namespace, name, credential)

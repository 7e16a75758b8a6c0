"""Event-driven ingestion around the broker: the worker Deployment and how it scales, and the
broker requested from the RabbitMQ cluster operator. (How the API and workers reach either
broker: `queue_env.py`; KEDA authenticates with the same two Secret keys.)

Workers scale on the ingest queue's backlog with KEDA when its CRDs exist (a `rabbitmq`
trigger, `QueueLength` = `workers.messagesPerWorker`); without KEDA, an HPA on CPU stands in
(an HPA on queue length needs a metrics adapter this operator cannot assume), or, with
`scaler: queueLength`, an HPA on the external metric `rabbitmq_queue_messages_ready` that
such an adapter serves.
"""

from __future__ import annotations

from ..naming import Names
from ..queues import INGEST_QUEUE
from ..spec import IndexForgeSpec
from ..telemetry import RABBITMQ_QUEUE_READY, target_labels
from . import ports
from .api import api_env, tmp_size
from .common import Obj, meta
from .python_service import ServiceShape, build_python_service
from .queue_env import broker_host, broker_secret, queue_env


def _scaled(spec: IndexForgeSpec) -> bool:
    workers = spec.messaging.workers
    return workers.min_replicas != workers.max_replicas


def build_workers(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    """Worker Deployment (the API image with --worker), headless Service for scraping, PDB
    and the scaler."""
    workers = spec.messaging.workers
    scaled = _scaled(spec)
    shape = ServiceShape(
        component="worker",
        image=spec.api.image,
        pull_policy=spec.api.image_pull_policy,
        replicas=None if scaled else workers.min_replicas,
        max_replicas=workers.max_replicas,
        port=ports.API,
        resources=workers.resources,
        budget=spec.api.pod_disruption_budget,
        env=[
            *api_env(spec, names, component="worker"),
            *queue_env(spec, names),
        ],
        redis="redis-app",
        state_redis=True,
        weaviate_key=True,
        tmp_size=tmp_size(spec),
        program="indexforge-api",
        extra_args=("--worker",),
        # Nobody routes to a worker: on SIGTERM it stops consuming and hands unfinished jobs
        # back to the broker (services/api/queued.py) without a pre-stop pause.
        drain=False,
        # Nobody calls a worker: only the headless Service Prometheus scrapes.
        cluster_service=False,
    )
    out = build_python_service(spec, names, shape)
    if not scaled:
        return out
    if workers.scaler == "keda":
        return [*out, *_keda(spec, names)]
    return [*out, _hpa(spec, names)]


def _keda(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    workers = spec.messaging.workers
    secret = broker_secret(spec, names)
    name = names.component("worker")
    auth = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": meta(names, "worker", name),
        "spec": {
            "secretTargetRef": [
                {"parameter": "username", "name": secret.name, "key": secret.username_key},
                {"parameter": "password", "name": secret.name, "key": secret.password_key},
            ]
        },
    }
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta(names, "worker", name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": workers.min_replicas,
            "maxReplicaCount": workers.max_replicas,
            "pollingInterval": 15,
            # Scale-in waits this long after the queue empties (jobs in flight finish first).
            "cooldownPeriod": 300,
            "triggers": [
                {
                    "type": "rabbitmq",
                    "metadata": {
                        "protocol": "amqp",
                        "host": f"amqp://{broker_host(names)}/",
                        "queueName": INGEST_QUEUE,
                        "mode": "QueueLength",
                        "value": str(workers.messages_per_worker),
                    },
                    "authenticationRef": {"name": name},
                }
            ],
        },
    }
    return [auth, scaled]


def _hpa_metric(spec: IndexForgeSpec, names: Names) -> Obj:
    """CPU, or the ingest queue's ready messages per worker as an external metric (served by
    an adapter from the broker's per-queue series, which carry these target labels)."""
    workers = spec.messaging.workers
    if workers.scaler == "queueLength":
        return {
            "type": "External",
            "external": {
                "metric": {
                    "name": RABBITMQ_QUEUE_READY,
                    "selector": {
                        "matchLabels": {
                            **target_labels(names, "rabbitmq"),
                            "queue": INGEST_QUEUE,
                        }
                    },
                },
                "target": {
                    "type": "AverageValue",
                    "averageValue": str(workers.messages_per_worker),
                },
            },
        }
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
    }


def _hpa(spec: IndexForgeSpec, names: Names) -> Obj:
    workers = spec.messaging.workers
    name = names.component("worker")
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(names, "worker", name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": max(workers.min_replicas, 1),
            "maxReplicas": workers.max_replicas,
            "metrics": [_hpa_metric(spec, names)],
        },
    }


def build_rabbitmq_cluster(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    """The broker as a RabbitmqCluster (rabbitmq.com/v1beta1) for the cluster operator, which
    then owns the StatefulSet, its Services and the default-user Secret."""
    rabbit = spec.messaging.rabbitmq
    persistence: Obj = {"emptyDir": {}}
    if rabbit.persistence.enabled:
        persistence = {"storage": rabbit.persistence.size}
    if rabbit.persistence.enabled and rabbit.persistence.storage_class_name:
        persistence["storageClassName"] = rabbit.persistence.storage_class_name
    cluster_spec: Obj = {
        "replicas": rabbit.replicas,
        "image": rabbit.image,
        "resources": {
            key: dict(value)
            for key, value in (
                ("requests", rabbit.resources.requests),
                ("limits", rabbit.resources.limits),
            )
            if value
        },
        "persistence": persistence,
        # rabbitmq_prometheus is one of the operator's essential plugins.
        "rabbitmq": {"additionalConfig": "cluster_partition_handling = pause_minority\n"},
    }
    if spec.image_pull_secrets:
        cluster_spec["imagePullSecrets"] = [{"name": n} for n in spec.image_pull_secrets]
    # The cluster operator copies the labels onto what it creates (pods, Services), so the
    # NetworkPolicies select its pods like the built-in broker's; what it creates is owned by
    # the RabbitmqCluster, never pruned as ours.
    return [
        {
            "apiVersion": "rabbitmq.com/v1beta1",
            "kind": "RabbitmqCluster",
            "metadata": meta(names, "rabbitmq", names.component("rabbitmq")),
            "spec": cluster_spec,
        }
    ]

"""Spec of event-driven ingestion: the RabbitMQ broker and the ingestion workers.

The broker is either deployed by the operator (a StatefulSet) or, when the RabbitMQ cluster
operator's CRD exists, requested from it as a `RabbitmqCluster` (`provider: auto`); the spec
can force either way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from .spec_common import (
    DisruptionBudget,
    Image,
    Persistence,
    PullPolicy,
    Resources,
    SpecModel,
    cel,
    disruption_field,
    image_field,
    persistence_field,
    pull_policy_field,
    resources_field,
    rules,
)

BrokerProvider = Literal["auto", "builtin", "rabbitmqClusterOperator"]
TopologyOwner = Literal["auto", "services", "topologyOperator"]
WorkerScaler = Literal["auto", "keda", "hpa", "queueLength"]


class RabbitMQSpec(SpecModel):
    """The broker: quorum queues replicated over `replicas` nodes."""

    image: Image = image_field("docker.io/library/rabbitmq:4.1.4", "RabbitMQ")
    image_pull_policy: PullPolicy = pull_policy_field()
    replicas: int = Field(
        default=3,
        ge=1,
        le=7,
        description="Broker nodes. Quorum queues need a majority: 3 survive the loss of one "
        "node, 1 is a single point of failure. Odd numbers only.",
        json_schema_extra=rules(cel("self % 2 == 1", "rabbitmq.replicas must be odd")),
    )
    persistence: Persistence = persistence_field("10Gi", "each RabbitMQ node (messages)")
    resources: Resources = resources_field(
        cpu_request="200m",
        memory_request="1Gi",
        cpu_limit="1",
        memory_limit="2Gi",
        what="each RabbitMQ node",
    )
    disruption_budget: DisruptionBudget = disruption_field()

    @model_validator(mode="after")
    def _odd(self) -> RabbitMQSpec:
        if self.replicas % 2 == 0:
            raise ValueError("rabbitmq.replicas must be odd")
        return self


class WorkersSpec(SpecModel):
    """Ingestion workers (the API image in worker mode), scaled on the queue's backlog."""

    scaler: WorkerScaler = Field(
        default="auto",
        description="keda: a ScaledObject on the ingest queue's length; hpa: CPU utilisation; "
        "queueLength: an HPA on the external metric rabbitmq_queue_messages_ready (needs a "
        "metrics adapter serving it, e.g. prometheus-adapter; see the README); auto: keda when "
        "its CRDs exist, else hpa. The HPA kinds need minReplicas >= 1.",
    )
    min_replicas: int = Field(
        default=1, ge=0, le=100, description="Fewest worker pods (0 only with KEDA)."
    )
    max_replicas: int = Field(default=10, ge=1, le=100, description="Most worker pods.")
    messages_per_worker: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Ready messages per worker the scaler aims for (queue length / workers).",
    )
    prefetch: int = Field(
        default=2, ge=1, le=64, description="Unacknowledged messages (jobs) a worker holds at once."
    )
    max_attempts: int = Field(
        default=5, ge=1, le=50, description="Attempts of a job before it goes to the DLQ."
    )
    resources: Resources = resources_field(
        cpu_request="100m",
        memory_request="256Mi",
        cpu_limit="1",
        memory_limit="1Gi",
        what="each worker",
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "workers.minReplicas must be less than or equal to maxReplicas",
            ),
            cel(
                "!(self.scaler in ['hpa', 'queueLength'] && self.minReplicas == 0)",
                "workers.minReplicas 0 needs the keda scaler (an HPA cannot scale to zero)",
            ),
        )
    )

    @model_validator(mode="after")
    def _bounds(self) -> WorkersSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("workers.minReplicas must be less than or equal to maxReplicas")
        if self.scaler in ("hpa", "queueLength") and self.min_replicas == 0:
            raise ValueError(
                "workers.minReplicas 0 needs the keda scaler (an HPA cannot scale to zero)"
            )
        return self


class MessagingSpec(SpecModel):
    """Event-driven ingestion: uploads become messages, workers index them."""

    enabled: bool = Field(
        default=False,
        description="Ingest through RabbitMQ and workers instead of tasks of the API pods.",
    )
    provider: BrokerProvider = Field(
        default="auto",
        description="builtin: the operator deploys RabbitMQ; rabbitmqClusterOperator: a "
        "RabbitmqCluster for the RabbitMQ cluster operator; auto: the latter when its CRD exists.",
    )
    topology: TopologyOwner = Field(
        default="auto",
        description="Who declares the exchange, queues and bindings. services: the API and "
        "workers (as the broker's default user); topologyOperator: objects of the RabbitMQ "
        "messaging topology operator (Exchange, Queue, Binding) plus an application User "
        "limited by a Permission to the ingestion objects, which the services then use "
        "(needs provider rabbitmqClusterOperator); auto: topologyOperator when the broker is "
        "a RabbitmqCluster and the topology operator's CRDs exist.",
    )
    rabbitmq: RabbitMQSpec = Field(default=RabbitMQSpec(), description="The broker.")
    workers: WorkersSpec = Field(default=WorkersSpec(), description="Ingestion workers.")

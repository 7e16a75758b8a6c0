"""Alerts of event-driven ingestion, on the broker's own metrics (rabbitmq_prometheus,
per-queue series). Only for the built-in broker: the RabbitMQ cluster operator's brokers are
scraped the way its documentation describes, outside this instance's targets."""

from __future__ import annotations

from .alert_model import Alert
from .decisions import uses_cluster_operator
from .naming import Names
from .queues import DEAD_LETTER_QUEUE, INGEST_QUEUE, JOBS_QUEUE
from .spec import IndexForgeSpec
from .telemetry import (
    COMPONENT_LABEL,
    GROUP_BY,
    RABBITMQ_DISK_ALARM,
    RABBITMQ_MEMORY_ALARM,
    RABBITMQ_QUEUE_CONSUMERS,
    RABBITMQ_QUEUE_MESSAGES,
    RABBITMQ_QUEUE_READY,
    matcher,
)


def messaging_alerts(spec: IndexForgeSpec, names: Names) -> list[Alert]:
    if not spec.messaging.enabled or uses_cluster_operator(spec):
        return []
    broker = {COMPONENT_LABEL: "rabbitmq"}
    ingest = matcher(names, **broker, queue=INGEST_QUEUE)
    dead = matcher(names, **broker, queue=DEAD_LETTER_QUEUE)
    outcomes = matcher(names, **broker, queue=JOBS_QUEUE)
    nodes = matcher(names, **broker)
    by = f"sum by ({GROUP_BY})"
    workers = spec.messaging.workers
    # Workers at their maximum, each with its target backlog: more than this waits.
    backlog = workers.max_replicas * workers.messages_per_worker
    return [
        Alert(
            "IndexForgeIngestDeadLetters",
            f"{by} ({RABBITMQ_QUEUE_MESSAGES}{dead}) > 0",
            "warning",
            "ingestion jobs are in the dead-letter queue",
            f"Messages are in {DEAD_LETTER_QUEUE}: invalid messages or jobs that ran out of "
            "attempts; their uploads were not indexed.",
        ),
        Alert(
            "IndexForgeIngestBacklog",
            f"{by} ({RABBITMQ_QUEUE_READY}{ingest}) > {backlog}",
            "warning",
            "ingestion is falling behind",
            f"More than {backlog} uploads wait in {INGEST_QUEUE} (maxReplicas x "
            "messagesPerWorker): the workers at their maximum cannot keep up.",
        ),
        Alert(
            "IndexForgeIngestNoConsumers",
            f"({by} ({RABBITMQ_QUEUE_READY}{ingest}) > 0)\n"
            f"  and ({by} ({RABBITMQ_QUEUE_CONSUMERS}{ingest}) == 0)",
            "critical",
            "uploads wait but no worker consumes them",
            f"Messages wait in {INGEST_QUEUE} and no worker is connected: uploads are "
            "accepted (202) but never indexed.",
        ),
        Alert(
            "IndexForgeJobOutcomesNotRecorded",
            f"({by} ({RABBITMQ_QUEUE_READY}{outcomes}) > 0)\n"
            f"  and ({by} ({RABBITMQ_QUEUE_CONSUMERS}{outcomes}) == 0)",
            "warning",
            "finished jobs are not recorded",
            f"Job outcomes wait in {JOBS_QUEUE} and no job projection consumes them: jobs "
            "that finished still read queued or processing.",
        ),
        Alert(
            "IndexForgeRabbitMQResourceAlarm",
            f"max by ({GROUP_BY}) ({RABBITMQ_MEMORY_ALARM}{nodes} + {RABBITMQ_DISK_ALARM}{nodes})"
            " > 0",
            "critical",
            "RabbitMQ blocks publishers (memory or disk alarm)",
            "A broker node raised its memory or free-disk alarm: publishers are blocked and "
            "uploads answer 503 until it clears.",
        ),
    ]

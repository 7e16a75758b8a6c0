"""The RabbitMQ objects of ingestion, declared by every publisher and worker (idempotent).

    events (topic exchange) --document.ingest.requested--> <prefix>.ingest (quorum)
    <prefix>.ingest.retry.<ms>ms (quorum, one per retry delay): x-message-ttl <ms>, then
                                 dead-lettered back to <prefix>.ingest
    <prefix>.ingest.dead  (quorum): the dead-letter queue (invalid, poison, exhausted)
    events --document.indexed, document.failed--> <prefix>.jobs (quorum): job outcomes, from
                                 which the job status records are projected (api/job_events.py)

Quorum queues: replicated, and durable messages survive a broker restart. A worker that
dies mid-message never acks it, so the broker redelivers it; `x-delivery-limit` bounds
those redeliveries (a message that kills every worker that takes it) and the broker then
dead-letters it to the DLQ itself. Retries with backoff do not use redelivery: the worker
publishes a copy to the retry queue of that delay, and expiry dead-letters it back.

One retry queue per delay, not one queue with per-message TTLs: RabbitMQ expires messages
only at the head of a queue, so a 2 s retry queued behind a 5 min one would wait 5 min.
In a queue whose messages all have the same TTL, the head always expires first.

Queue arguments cannot change on an existing queue (declare fails PRECONDITION_FAILED),
so they are constants here, not settings; a retry queue's name carries its TTL.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.abc import FieldTable

INGEST_REQUESTED = "document.ingest.requested"
# The outcomes a job's status is projected from; published mandatory (an unroutable outcome
# would leave the job "processing" forever).
JOB_OUTCOMES = ("document.indexed", "document.failed")
# Redeliveries after a worker died holding the message (crash, OOM, kill -9).
DELIVERY_LIMIT = 10
# Headers the worker sets.
ATTEMPT_HEADER = "x-indexforge-attempt"
REASON_HEADER = "x-indexforge-reason"


@dataclass(frozen=True)
class Names:
    prefix: str = "indexforge"

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.events"

    @property
    def ingest(self) -> str:
        return f"{self.prefix}.ingest"

    def retry(self, delay_ms: int) -> str:
        return f"{self.prefix}.ingest.retry.{delay_ms}ms"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.ingest.dead"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}.jobs"


@dataclass(frozen=True)
class Topology:
    exchange: AbstractExchange
    ingest: AbstractQueue
    dead: AbstractQueue
    jobs: AbstractQueue


def bounded_arguments(names: Names) -> FieldTable:
    """A quorum queue whose messages go to the DLQ after DELIVERY_LIMIT redeliveries."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": names.dead,
    }


async def declare(channel: AbstractChannel, names: Names) -> Topology:
    exchange = await channel.declare_exchange(
        names.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dead = await channel.declare_queue(
        names.dead, durable=True, arguments={"x-queue-type": "quorum"}
    )
    ingest = await channel.declare_queue(
        names.ingest,
        durable=True,
        arguments=bounded_arguments(names),
    )
    await ingest.bind(exchange, routing_key=INGEST_REQUESTED)
    jobs = await channel.declare_queue(
        names.jobs,
        durable=True,
        arguments=bounded_arguments(names),
    )
    for outcome in JOB_OUTCOMES:
        await jobs.bind(exchange, routing_key=outcome)
    return Topology(exchange=exchange, ingest=ingest, dead=dead, jobs=jobs)


def delay_ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


async def declare_retry(channel: AbstractChannel, names: Names, delay: int) -> str:
    """The retry queue of `delay` milliseconds; returns its name."""
    name = names.retry(delay)
    await channel.declare_queue(
        name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": delay,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.ingest,
        },
    )
    return name

"""The RabbitMQ objects of ingestion, declared by every publisher and worker (idempotent).

    events (topic exchange) --document.ingest.requested--> <prefix>.ingest (quorum)
    <prefix>.ingest.retry (quorum): per-message TTL, dead-letters back to <prefix>.ingest
    <prefix>.ingest.dead  (quorum): the dead-letter queue (invalid, poison, exhausted)

Quorum queues: replicated, and durable messages survive a broker restart. A worker that
dies mid-message never acks it, so the broker redelivers it; `x-delivery-limit` bounds
those redeliveries (a message that kills every worker that takes it) and the broker then
dead-letters it to the DLQ itself. Retries with backoff do not use redelivery: the worker
publishes a copy to the retry queue with an expiration, and expiry dead-letters it back.

Queue arguments cannot change on an existing queue (declare fails PRECONDITION_FAILED),
so they are constants here, not settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

INGEST_REQUESTED = "document.ingest.requested"
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

    @property
    def retry(self) -> str:
        return f"{self.prefix}.ingest.retry"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.ingest.dead"


@dataclass(frozen=True)
class Topology:
    exchange: AbstractExchange
    ingest: AbstractQueue
    retry: AbstractQueue
    dead: AbstractQueue


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
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.dead,
        },
    )
    await ingest.bind(exchange, routing_key=INGEST_REQUESTED)
    retry = await channel.declare_queue(
        names.retry,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.ingest,
        },
    )
    return Topology(exchange=exchange, ingest=ingest, retry=retry, dead=dead)

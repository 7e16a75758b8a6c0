"""The application user's Permission (topology operator mode) is enough, and no more.

With the messaging topology operator, the services connect as a user limited to the ingestion
objects (`builders/rabbitmq_topology.permission_rules`). That user is created here on a real
RabbitMQ, in a vhost of its own, with exactly those rules, and the services' own publisher and
consumer run the whole message life as it: declare the topology, publish a request, retry it
through a retry queue (published to the default exchange), dead-letter it, publish an outcome
into the jobs queue. Anything else (a foreign queue, another exchange) is refused.
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from indexforge_operator.builders.rabbitmq_topology import permission_rules
from indexforge_operator.queues import QUEUE_PREFIX
from indexforge_services.messaging.consumer import Consumer, RetryPolicy
from indexforge_services.messaging.publisher import Publisher
from indexforge_services.messaging.retry import Decision
from indexforge_services.messaging.schemas import IngestRequested, IngestRequestedPayload
from indexforge_services.messaging.topology import REASON_HEADER, Names, declare

from .queue_helpers import rabbitmq
from .rabbitmq import RabbitMQNode
from .test_job_projection import indexed

__all__ = ["rabbitmq"]  # fixtures, used by name

pytestmark = pytest.mark.slow


def app_user(node: RabbitMQNode) -> str:
    """A vhost and a user with the operator's rules in it; returns the user's AMQP URL."""
    vhost, user, password = (f"{p}-{uuid.uuid4().hex[:8]}" for p in ("v", "app", "pw"))
    rules = permission_rules()
    node.ctl("add_vhost", vhost)
    node.ctl("add_user", user, password)
    node.ctl(
        "set_permissions", "-p", vhost, user, rules["configure"], rules["write"], rules["read"]
    )
    return f"amqp://{user}:{password}@127.0.0.1:{node.amqp_port}/{vhost}"


def request() -> IngestRequested:
    return IngestRequested(
        payload=IngestRequestedPayload(
            job_id=uuid.uuid4().hex,
            document_id=str(uuid.uuid4()),
            kind="text",
            source="t",
            payload_key="k",
            records=1,
            size=1,
        )
    )


async def _life(url: str) -> tuple[list[int], list[str], bytes | None]:
    names = Names(QUEUE_PREFIX)
    attempts: list[int] = []

    async def handler(_: IngestRequested, attempt: int) -> Decision:
        attempts.append(attempt)
        if attempt == 1:
            return Decision("retry", 0.2, "once")
        return Decision("dead_letter", why="twice")

    consumer = Consumer(url, names, handler, prefetch=1, policy=RetryPolicy())
    publisher = Publisher(url, names)
    consumer.start()
    try:
        await asyncio.wait_for(consumer.consuming.wait(), timeout=30)
        await publisher.publish(request())
        await publisher.publish(indexed(uuid.uuid4().hex))  # into the jobs queue
        for _ in range(100):
            if len(attempts) == 2:
                break
            await asyncio.sleep(0.1)
        connection = await aio_pika.connect(url, timeout=5)
        async with connection:
            channel = await connection.channel()
            topology = await declare(channel, names)
            dead = await topology.dead.get(fail=False, timeout=5)
            outcome = await topology.jobs.get(fail=False, timeout=5)
            reasons = [str((dead.headers or {}).get(REASON_HEADER))] if dead else []
            return attempts, reasons, outcome.body if outcome else None
    finally:
        await consumer.stop(grace_seconds=1)
        await publisher.close()


def test_the_application_user_can_do_everything_ingestion_needs(rabbitmq: RabbitMQNode) -> None:
    attempts, reasons, outcome = asyncio.run(_life(app_user(rabbitmq)))
    assert attempts == [1, 2]  # retried through a retry queue, then dead-lettered
    assert reasons == ["twice"]
    assert outcome is not None and b"document.indexed" in outcome


async def _refused(url: str, action: str) -> None:
    connection = await aio_pika.connect(url, timeout=5)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        if action == "foreign queue":
            await channel.declare_queue("orders", durable=True)
        else:
            exchange = await channel.get_exchange("amq.topic")
            await exchange.publish(aio_pika.Message(b"x"), routing_key="x")


@pytest.mark.parametrize("action", ["foreign queue", "foreign exchange"])
def test_and_nothing_else(rabbitmq: RabbitMQNode, action: str) -> None:
    url = app_user(rabbitmq)
    with pytest.raises(ChannelAccessRefused):
        asyncio.run(_refused(url, action))

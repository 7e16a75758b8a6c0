"""Helpers of the queue tests: RabbitMQ fixtures, worker processes, reading the DLQ, counting
what Weaviate holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import redis

from indexforge_services.api.settings import ApiSettings
from indexforge_services.api.store import StoredObject, WeaviateStore
from indexforge_services.common.cache import decode_entry
from indexforge_services.messaging.topology import Names, declare
from tests.services.rabbitmq import RabbitMQNode, rabbitmq_binary
from tests.services.service_process import ServiceProcess


def _node(workdir: Path) -> Iterator[RabbitMQNode]:
    if rabbitmq_binary() is None:
        # Fail, never skip: a missing package must not make the broker tests vanish.
        pytest.fail("rabbitmq-server is not installed (make system-deps)")
    node = RabbitMQNode(workdir)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def rabbitmq(workdir: Path) -> Iterator[RabbitMQNode]:
    """A node shared by the tests that do not stop it (each uses its own queue prefix)."""
    yield from _node(workdir / "rabbitmq")


@pytest.fixture
def private_rabbitmq(tmp_path: Path) -> Iterator[RabbitMQNode]:
    """A node of this test alone: it may be stopped and restarted."""
    yield from _node(tmp_path / "rabbitmq")


@dataclass
class QueueWiring:
    """What the API and its workers must agree on (one test's world)."""

    amqp_url: str
    weaviate_url: str
    weaviate_grpc_port: int
    ml_url: str
    redis_url: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    collection: str = field(default_factory=lambda: f"Queue{uuid.uuid4().hex[:12]}")
    namespace: str = field(default_factory=lambda: f"q-{uuid.uuid4().hex[:8]}")

    @property
    def names(self) -> Names:
        return Names(self.prefix)

    def api_overrides(self, **extra: Any) -> dict[str, Any]:
        return {
            "ingest_mode": "queue",
            "amqp_url": self.amqp_url,
            "queue_prefix": self.prefix,
            "weaviate_url": self.weaviate_url,
            "weaviate_grpc_port": self.weaviate_grpc_port,
            "weaviate_collection": self.collection,
            "ml_url": self.ml_url,
            "redis_url": self.redis_url,
            "cache_namespace": self.namespace,
            **extra,
        }

    def worker_env(self, **extra: str) -> dict[str, str]:
        env = {
            f"INDEXFORGE_{k.upper()}": str(v)
            for k, v in self.api_overrides(ingest_worker="true").items()
        }
        env.update(INDEXFORGE_EXCEL_URL="", INDEXFORGE_LOG_LEVEL="INFO")
        env.pop("INDEXFORGE_EXCEL_URL")
        env.update({f"INDEXFORGE_{k.upper()}": v for k, v in extra.items()})
        return env


def start_worker(wiring: QueueWiring, workdir: Path, **extra: str) -> ServiceProcess:
    """`indexforge-api` in worker mode, its own process (so it can be killed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return ServiceProcess("api", wiring.worker_env(**extra), workdir).start()


# -- broker and Weaviate observations -------------------------------------------------------


async def _drain(url: str, names: Names, limit: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(url, timeout=5)
    async with connection:
        channel = await connection.channel()
        topology = await declare(channel, names)
        found = []
        for _ in range(limit):
            message = await topology.dead.get(fail=False, timeout=5)
            if message is None:
                break
            await message.ack()
            found.append(message)
        return found


def dead_letters(url: str, names: Names, *, limit: int = 50) -> list[tuple[bytes, dict[str, Any]]]:
    """Take every message off the DLQ: (body, headers)."""
    messages = asyncio.run(_drain(url, names, limit))
    return [(m.body, dict(m.headers or {})) for m in messages]


async def _publish_raw(url: str, names: Names, bodies: list[bytes], routing_key: str) -> None:
    connection = await aio_pika.connect(url, timeout=5)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        topology = await declare(channel, names)
        for body in bodies:
            await topology.exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=routing_key,
            )


def publish_raw(url: str, names: Names, bodies: list[bytes], *, routing_key: str) -> None:
    """Publish bodies as they are, bypassing validation (what a broken producer would send)."""
    asyncio.run(_publish_raw(url, names, bodies, routing_key))


def weaviate_count(weaviate_url: str, collection: str) -> int:
    """Objects in a collection (0 when it does not exist yet)."""
    query = {"query": f"{{ Aggregate {{ {collection} {{ meta {{ count }} }} }} }}"}
    body = httpx.post(f"{weaviate_url}/v1/graphql", json=query, timeout=30).json()
    if body.get("errors"):
        return 0
    return int(body["data"]["Aggregate"][collection][0]["meta"]["count"])


def job_record(wiring: QueueWiring, job_id: str) -> dict[str, Any]:
    """The job's whole record as stored (fields clients do not see, like `worker`)."""
    client = redis.Redis.from_url(wiring.redis_url)
    try:
        raw = client.get(f"{wiring.namespace}:v:job:{job_id}")
    finally:
        client.close()
    entry = decode_entry(raw) if isinstance(raw, bytes) else None
    assert entry is not None, f"no record of job {job_id}"
    record: dict[str, Any] = entry.value
    return record


async def _all_objects(wiring: QueueWiring) -> list[StoredObject]:
    listing = httpx.get(
        f"{wiring.weaviate_url}/v1/objects",
        params={"class": wiring.collection, "limit": 10_000},
        timeout=30,
    ).json()
    ids = [o["id"] for o in listing.get("objects", [])]
    store = WeaviateStore(
        ApiSettings(
            weaviate_url=wiring.weaviate_url,
            weaviate_grpc_port=wiring.weaviate_grpc_port,
            weaviate_collection=wiring.collection,
            redis_url=None,
        )
    )
    try:
        found = await store.fetch(ids, with_vectors=False)
    finally:
        await store.close()
    return list(found.values())


def all_objects(wiring: QueueWiring) -> list[StoredObject]:
    """Every object of the test's collection, with its references (read by id)."""
    return asyncio.run(_all_objects(wiring))


EVENTS = ("document.indexed", "document.failed", "document.deleted")


async def _bind_events(url: str, names: Names, queue_name: str) -> None:
    connection = await aio_pika.connect(url, timeout=5)
    async with connection:
        channel = await connection.channel()
        topology = await declare(channel, names)
        queue = await channel.declare_queue(queue_name, durable=True)
        for event in EVENTS:
            await queue.bind(topology.exchange, routing_key=event)


def bind_events(url: str, names: Names, queue_name: str) -> None:
    """A queue of the test receiving every event the services publish."""
    asyncio.run(_bind_events(url, names, queue_name))


async def _take(url: str, queue_name: str, limit: int) -> list[bytes]:
    connection = await aio_pika.connect(url, timeout=5)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, durable=True)
        bodies = []
        for _ in range(limit):
            message = await queue.get(fail=False, timeout=5)
            if message is None:
                break
            await message.ack()
            bodies.append(message.body)
        return bodies


def take(url: str, queue_name: str, *, limit: int = 50) -> list[bytes]:
    """Take the messages waiting in a queue (bodies)."""
    return asyncio.run(_take(url, queue_name, limit))

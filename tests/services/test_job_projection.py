"""Job status projected from the job outcome events (`services/api/job_events.py`).

The pure projection is tested directly; the rest runs on a real RabbitMQ (Debian
rabbitmq-server), real Redis, Weaviate and ML service, and breaks things:

* the broker returns a job's outcome (nothing bound to take it): the job is retried, not
  reported, and completes once the outcome is confirmed, with one copy of its records in
  Weaviate;
* Redis is down when an outcome arrives: the projection keeps the event and writes the
  record once Redis is back (a record lost with Redis is rebuilt from its event);
* an invalid event on the jobs queue is dead-lettered with its reason, the next one applied;
* duplicates and a late contradicting outcome change nothing: the first outcome wins.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aio_pika
import httpx
import pytest

from indexforge_services.api.job_events import project
from indexforge_services.messaging.publisher import Publisher
from indexforge_services.messaging.schemas import (
    DocumentFailed,
    DocumentIndexed,
    FailedPayload,
    IndexedPayload,
)
from indexforge_services.messaging.topology import REASON_HEADER, declare
from tests.waiting import wait_for

from .conftest import ApiFactory, RedisProcess, metric, wait_job
from .queue_helpers import (
    QueueWiring,
    dead_letters,
    job_record,
    publish_raw,
    rabbitmq,
    weaviate_count,
)
from .rabbitmq import RabbitMQNode
from .test_ingest_queue import accepted, wiring_for

__all__ = ["rabbitmq", "wiring_for"]  # fixtures, used by name

DOC = str(uuid.uuid4())


def indexed(job_id: str, *, written: int = 3) -> DocumentIndexed:
    return DocumentIndexed(
        payload=IndexedPayload(
            job_id=job_id, document_id=DOC, records=written, written=written, added=written
        )
    )


def failed(job_id: str) -> DocumentFailed:
    return DocumentFailed(
        payload=FailedPayload(
            job_id=job_id,
            document_id=DOC,
            reason="ml_unavailable",
            error="the embedding service is unavailable; upload again later",
            attempts=5,
        )
    )


def new_job() -> str:
    return uuid.uuid4().hex


# -- the projection itself ------------------------------------------------------------------


def test_an_outcome_finishes_a_running_job_and_keeps_what_the_api_recorded() -> None:
    job = new_job()
    running = {"id": job, "status": "processing", "stage": "embedding", "source": "a.csv"}
    done = project(running, indexed(job, written=7), now=10.0)
    assert done is not None
    assert (done["status"], done["written"], done["stage"], done["source"]) == (
        "completed", 7, None, "a.csv",
    )  # fmt: skip
    assert running["status"] == "processing"  # pure: the input is not changed
    gone = project(running, failed(job), now=10.0)
    assert gone is not None
    assert (gone["status"], gone["reason"], gone["attempts"], gone["written"]) == (
        "failed", "ml_unavailable", 5, 0,
    )  # fmt: skip


def test_the_first_outcome_wins_and_duplicates_change_nothing() -> None:
    job = new_job()
    first = indexed(job)
    done = project({"id": job, "status": "queued"}, first, now=1.0)
    assert done is not None and done["event_id"] == str(first.id)
    assert project(done, first, now=2.0) is None  # redelivery
    assert project(done, indexed(job), now=2.0) is None  # a re-run's duplicate
    assert project(done, failed(job), now=2.0) is None  # a late contradicting outcome


def test_a_lost_record_is_rebuilt_from_its_event() -> None:
    job = new_job()
    event = indexed(job, written=4)
    rebuilt = project(None, event, now=5.0)
    assert rebuilt is not None
    assert (rebuilt["id"], rebuilt["document_id"], rebuilt["status"], rebuilt["records"]) == (
        job, DOC, "completed", 4,
    )  # fmt: skip


# -- on the real broker ---------------------------------------------------------------------


def publish(wiring: QueueWiring, *events: DocumentIndexed | DocumentFailed) -> None:
    async def run() -> None:
        publisher = Publisher(wiring.amqp_url, wiring.names)
        try:
            for event in events:
                await publisher.publish(event)
        finally:
            await publisher.close()

    asyncio.run(run())


def unbind_outcome(wiring: QueueWiring, outcome: str) -> None:
    async def run() -> None:
        connection = await aio_pika.connect(wiring.amqp_url, timeout=5)
        async with connection:
            channel = await connection.channel()
            topology = await declare(channel, wiring.names)
            await topology.jobs.unbind(topology.exchange, routing_key=outcome)

    asyncio.run(run())


def projection_ready(server: Any) -> None:
    projection = server.app.state.api_service.projection
    wait_for(projection.consuming.is_set, timeout=30, what="the job projection consuming")


@pytest.mark.slow
def test_an_outcome_the_broker_returns_is_retried_until_it_is_confirmed(
    make_api: ApiFactory, rabbitmq: RabbitMQNode, wiring_for: Any
) -> None:
    wiring: QueueWiring = wiring_for(rabbitmq)
    overrides = wiring.api_overrides(ingest_worker=True, queue_retry_base_seconds=0.5)
    with (
        make_api(**overrides) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        projection_ready(server)
        app = server.app
        # The API's publisher is connected (it declares the topology only when it connects).
        first = wait_job(c, accepted(c, "a first document")["job_id"])
        assert first["status"] == "completed"
        # Nothing takes `document.indexed` now: the next outcome is returned (mandatory).
        unbind_outcome(wiring, "document.indexed")
        job = accepted(c, "an outcome nobody may record yet\nsecond line of it")
        record = wait_job(c, job["job_id"])
        # Returned, so not an outcome: the job was retried (its publisher reconnected and
        # declared the binding again) and completed by the retry's confirmed outcome.
        assert metric(app, "api_queue_publish_failures_total", type="document.indexed") == 1
        assert metric(app, "api_queue_messages_total", outcome="retried") == 1
        assert (record["status"], record["attempts"]) == ("completed", 2), record
        # The re-run wrote nothing new: one copy of each record of both documents.
        stored = weaviate_count(wiring.weaviate_url, wiring.collection)
        assert stored == first["records"] + record["records"]
        applied = {"type": "document.indexed", "result": "applied"}
        assert metric(app, "api_job_events_total", **applied) == 2


@pytest.mark.slow
def test_the_projection_waits_out_a_redis_outage_and_loses_no_outcome(
    make_api: ApiFactory,
    rabbitmq: RabbitMQNode,
    wiring_for: Any,
    private_redis: RedisProcess,
) -> None:
    base: QueueWiring = wiring_for(rabbitmq)
    wiring = QueueWiring(
        amqp_url=base.amqp_url,
        weaviate_url=base.weaviate_url,
        weaviate_grpc_port=base.weaviate_grpc_port,
        ml_url=base.ml_url,
        redis_url=private_redis.url,
    )
    with make_api(**wiring.api_overrides(ingest_worker=True)) as server:
        projection_ready(server)
        app = server.app
        private_redis.stop()
        lost = new_job()  # its record was lost with Redis: only the event knows the job
        publish(wiring, indexed(lost, written=5))
        time.sleep(3)  # the projection has the event and is retrying its write
        applied = {"type": "document.indexed", "result": "applied"}
        assert metric(app, "api_job_events_total", **applied) == 0
        private_redis.start()
        wait_for(
            lambda: metric(app, "api_job_events_total", **applied) == 1,
            timeout=60,
            what="the outcome recorded after Redis came back",
        )
    record = job_record(wiring, lost)
    assert (record["status"], record["written"], record["document_id"]) == ("completed", 5, DOC)


@pytest.mark.slow
def test_invalid_job_events_are_dead_lettered_and_duplicates_change_nothing(
    make_api: ApiFactory, rabbitmq: RabbitMQNode, wiring_for: Any
) -> None:
    wiring: QueueWiring = wiring_for(rabbitmq)
    job = new_job()
    first = indexed(job, written=2)
    garbage = [b"{not json", json.dumps({"type": "document.indexed", "payload": {}}).encode()]
    with make_api(**wiring.api_overrides(ingest_worker=True)) as server:
        projection_ready(server)
        app = server.app
        publish_raw(wiring.amqp_url, wiring.names, garbage, routing_key="document.indexed")
        publish(wiring, first, first, indexed(job, written=9), failed(job))

        def settled() -> bool:
            seen = sum(
                metric(app, "api_job_events_total", type=kind, result=result)
                for kind in ("document.indexed", "document.failed")
                for result in ("applied", "duplicate")
            )
            return seen == 4

        wait_for(settled, timeout=30, what="four valid events handled")
        assert metric(app, "api_job_events_total", type="document.indexed", result="applied") == 1
        assert metric(app, "api_job_events_total", type="document.failed", result="duplicate") == 1
    record = job_record(wiring, job)
    assert (record["status"], record["written"], record["event_id"]) == (
        "completed", 2, str(first.id),
    )  # fmt: skip
    letters = wait_for(
        lambda: (found := dead_letters(wiring.amqp_url, wiring.names)) and found,
        timeout=30,
        what="dead letters",
    )
    assert sorted(body for body, _ in letters) == sorted(garbage)
    assert all(headers[REASON_HEADER].startswith("invalid message") for _, headers in letters)

"""Event-driven ingestion on a real RabbitMQ (Debian rabbitmq-server), real Redis, Weaviate and
ML service: what the queue promises, shown by breaking things.

* a malformed message lands in the DLQ with its reason, and the consumer keeps consuming;
* a job whose dependency stays down is retried with backoff (through the retry queue's
  expiry) and then dead-lettered, and its job fails with the attempts it took;
* broker down: uploads get 503 `queue_unavailable` with Retry-After; back up: 202 again;
* kill -9 of the worker holding a job: the job completes on the other worker, and Weaviate
  holds exactly one copy of every record;
* broker restarted while uploads stream in: every accepted document is in Weaviate once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from indexforge_services.messaging.schemas import parse
from indexforge_services.messaging.topology import (
    ATTEMPT_HEADER,
    INGEST_REQUESTED,
    REASON_HEADER,
    Names,
    declare,
    declare_retry,
)
from tests.procs import free_port
from tests.stack.weaviate import WeaviateProcess
from tests.waiting import wait_for

from .conftest import ApiFactory, RedisProcess, ServerThread, metric, wait_job
from .queue_helpers import (
    QueueWiring,
    all_objects,
    bind_events,
    dead_letters,
    job_record,
    private_rabbitmq,
    publish_raw,
    rabbitmq,
    start_worker,
    take,
    weaviate_count,
)
from .rabbitmq import RabbitMQNode
from .workbooks import PRODUCTS, products_xlsx

__all__ = ["private_rabbitmq", "rabbitmq"]  # fixtures, used by name

pytestmark = pytest.mark.slow
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def wiring_for(
    weaviate_server: WeaviateProcess, ml_server: ServerThread, app_redis: RedisProcess
) -> Any:
    def build(node: RabbitMQNode) -> QueueWiring:
        return QueueWiring(
            amqp_url=node.url,
            weaviate_url=weaviate_server.url,
            weaviate_grpc_port=weaviate_server.ports.grpc,
            ml_url=ml_server.url,
            redis_url=app_redis.db_url(0),
        )

    return build


def upload(client: httpx.Client, text: str, source: str = "t") -> httpx.Response:
    return client.post("/api/v1/documents", json={"text": text, "source": source})


def accepted(client: httpx.Client, text: str) -> dict[str, Any]:
    response = upload(client, text)
    assert response.status_code == 202, response.text[:300]
    body: dict[str, Any] = response.json()
    return body


# -- unhappy paths ----------------------------------------------------------------------------


def test_malformed_messages_are_dead_lettered_and_consuming_goes_on(
    make_api: ApiFactory, rabbitmq: RabbitMQNode, wiring_for: Any
) -> None:
    wiring: QueueWiring = wiring_for(rabbitmq)
    with (
        make_api(**wiring.api_overrides(ingest_worker=True)) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        wait_for(lambda: server.app.state.api_service.consumer.consuming.is_set(), timeout=30)
        valid = accepted(c, "a first document, before the garbage")
        wrong_type = {
            "type": "document.deleted",
            "payload": {"document_id": valid["document_id"], "records": 1},
        }
        bad_payload = {"type": INGEST_REQUESTED, "payload": {"job_id": "nope"}}
        bodies = [b"\x00not json at all", json.dumps(bad_payload).encode()]
        bodies.append(json.dumps(wrong_type).encode())
        publish_raw(wiring.amqp_url, wiring.names, bodies, routing_key=INGEST_REQUESTED)
        # The consumer is alive: a document sent after the garbage is indexed.
        later = accepted(c, "a second document, after the garbage")
        for job_id in (valid["job_id"], later["job_id"]):
            assert wait_job(c, job_id)["status"] == "completed"
        app = server.app
        assert metric(app, "api_queue_messages_total", outcome="invalid") == 3
        assert metric(app, "api_queue_messages_total", outcome="done") == 2
        assert metric(app, "api_queue_consuming") == 1

    letters = wait_for(
        lambda: (found := dead_letters(wiring.amqp_url, wiring.names)) and found,
        timeout=30,
        what="dead letters",
    )
    assert sorted(body for body, _ in letters) == sorted(bodies)
    reasons = {body: headers[REASON_HEADER] for body, headers in letters}
    assert reasons[bodies[0]].startswith("invalid message: body: Invalid JSON")
    assert "payload.document_id" in reasons[bodies[1]] or "payload." in reasons[bodies[1]]
    assert "does not belong on this queue" in reasons[bodies[2]]


def test_a_job_whose_dependency_stays_down_is_retried_then_dead_lettered(
    make_api: ApiFactory, rabbitmq: RabbitMQNode, wiring_for: Any
) -> None:
    wiring: QueueWiring = wiring_for(rabbitmq)
    dead_ml = f"http://127.0.0.1:{free_port()}"
    overrides = wiring.api_overrides(
        ingest_worker=True,
        ml_url=dead_ml,
        queue_max_attempts=3,
        queue_retry_base_seconds=0.3,
    )
    with make_api(**overrides) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        began = time.monotonic()
        job = wait_job(c, accepted(c, "nobody can embed this")["job_id"], timeout=60)
        took = time.monotonic() - began
        assert (job["status"], job["reason"], job["attempts"]) == ("failed", "ml_unavailable", 3)
        assert job["error"] == "the embedding service is unavailable; upload again later"
        # Two delays through the retry queue: 0.3 s then 0.6 s.
        assert took >= 0.9
        assert c.get(f"/api/v1/documents/{job['document_id']}").status_code == 404
        app = server.app
        assert metric(app, "api_queue_messages_total", outcome="retried") == 2
        assert metric(app, "api_queue_messages_total", outcome="exhausted") == 1
    (letter,) = wait_for(
        lambda: dead_letters(wiring.amqp_url, wiring.names) or None, timeout=30, what="letter"
    )
    body, headers = letter
    assert json.loads(body)["payload"]["job_id"] == job["id"]
    assert headers[REASON_HEADER] == "ml_unavailable after 3 attempts"
    assert headers[ATTEMPT_HEADER] == 3
    assert weaviate_count(wiring.weaviate_url, wiring.collection) == 0


async def _retry_order(url: str, names: Names) -> list[tuple[bytes, float]]:
    connection = await aio_pika.connect(url, timeout=5)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        topology = await declare(channel, names)
        began = time.monotonic()
        for body, delay in ((b"slow", 3000), (b"fast", 300)):
            queue = await declare_retry(channel, names, delay)
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
        arrived: list[tuple[bytes, float]] = []
        deadline = began + 30
        while len(arrived) < 2 and time.monotonic() < deadline:
            message = await topology.ingest.get(fail=False, timeout=5)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            await message.ack()
            arrived.append((message.body, time.monotonic() - began))
        return arrived


def test_a_short_retry_never_waits_behind_a_long_one(rabbitmq: RabbitMQNode) -> None:
    """RabbitMQ expires messages at a queue's head only: one retry queue per delay."""
    names = Names(f"t{uuid.uuid4().hex[:10]}")
    (first, at_first), (second, at_second) = asyncio.run(_retry_order(rabbitmq.url, names))
    assert (first, second) == (b"fast", b"slow")
    assert 0.3 <= at_first < 2.5 and at_second >= 3.0, (at_first, at_second)


def test_broker_down_is_503_with_retry_after_then_202_when_back(
    make_api: ApiFactory, private_rabbitmq: RabbitMQNode, wiring_for: Any
) -> None:
    wiring: QueueWiring = wiring_for(private_rabbitmq)
    with (
        make_api(**wiring.api_overrides(ingest_worker=True)) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        assert wait_job(c, accepted(c, "before the outage")["job_id"])["status"] == "completed"
        private_rabbitmq.stop_server()
        refused = upload(c, "during the outage")
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "queue_unavailable"
        assert refused.headers["Retry-After"] == "5"
        assert refused.headers["Cache-Control"] == "no-store"
        kind = "document.ingest.requested"
        assert metric(server.app, "api_queue_publish_failures_total", type=kind) == 1
        private_rabbitmq.start()
        # The publisher reconnects on the next upload; the worker's consumer by itself.
        again = upload(c, "during the outage")
        assert again.status_code == 202, again.text
        assert wait_job(c, again.json()["job_id"])["status"] == "completed"
    assert weaviate_count(wiring.weaviate_url, wiring.collection) == 2


def test_job_outcomes_and_deletions_are_published_as_valid_events(
    make_api: ApiFactory, rabbitmq: RabbitMQNode, wiring_for: Any
) -> None:
    wiring: QueueWiring = wiring_for(rabbitmq)
    events = f"{wiring.prefix}.test-events"
    bind_events(wiring.amqp_url, wiring.names, events)
    with (
        make_api(**wiring.api_overrides(ingest_worker=True)) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        indexed = wait_job(c, accepted(c, "a document to index, then delete")["job_id"])
        assert c.delete(f"/api/v1/documents/{indexed['document_id']}").status_code == 200
    dead_ml = f"http://127.0.0.1:{free_port()}"
    failing = wiring.api_overrides(ingest_worker=True, ml_url=dead_ml, queue_max_attempts=1)
    with make_api(**failing) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        failed = wait_job(c, accepted(c, "nobody can embed this one")["job_id"])
    bodies = wait_for(
        lambda: (found := take(wiring.amqp_url, events)) and found, timeout=30, what="events"
    )
    parsed = {m.type: m for m in map(parse, bodies)}  # each validates against its schema
    assert sorted(parsed) == ["document.deleted", "document.failed", "document.indexed"]
    done = parsed["document.indexed"].payload
    assert (done.job_id, done.document_id) == (indexed["id"], indexed["document_id"])
    assert (done.records, done.written) == (indexed["records"], indexed["written"])
    assert parsed["document.deleted"].payload.document_id == indexed["document_id"]
    gone = parsed["document.failed"].payload
    assert (gone.job_id, gone.reason, gone.attempts) == (failed["id"], "ml_unavailable", 1)
    assert gone.error == failed["error"]
    assert parsed["document.indexed"].correlation_id == indexed["correlation_id"]


def test_a_workbook_travels_through_the_queue_and_is_read_by_the_worker(
    make_api: ApiFactory, excel_server: ServerThread, rabbitmq: RabbitMQNode, wiring_for: Any
) -> None:
    """The workbook's bytes wait in Redis; the worker sends them to the Excel processor."""
    wiring: QueueWiring = wiring_for(rabbitmq)
    overrides = wiring.api_overrides(ingest_worker=True, excel_url=excel_server.url)
    with make_api(**overrides) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        response = c.post(
            "/api/v1/documents", files={"file": ("products.xlsx", products_xlsx(), XLSX)}
        )
        assert response.status_code == 202, response.text
        job = wait_job(c, response.json()["job_id"])
        assert (job["status"], job["records"]) == ("completed", len(PRODUCTS)), job
        assert job["written"] == len(PRODUCTS)
    assert weaviate_count(wiring.weaviate_url, wiring.collection) == len(PRODUCTS)


# -- worker and broker failures -----------------------------------------------------------------


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for worker in started:
        worker.stop()


def csv_rows(n: int, tag: str) -> bytes:
    lines = ["name,notes"] + [f"item {tag} {i},row {i} of the {tag} sheet" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def test_kill_9_of_the_worker_mid_job_completes_elsewhere_exactly_once(
    make_api: ApiFactory,
    rabbitmq: RabbitMQNode,
    wiring_for: Any,
    workers: list[Any],
    tmp_path: Path,
) -> None:
    wiring: QueueWiring = wiring_for(rabbitmq)
    # Small batches: the job spends seconds writing, so it can be killed in the middle.
    slow = {"WEAVIATE_BATCH_SIZE": "5", "EMBED_BATCH_SIZE": "4", "QUEUE_PREFETCH": "1"}
    for n in range(2):
        workers.append(start_worker(wiring, tmp_path / f"worker-{n}", **slow))
    by_pid = {w.pid: w for w in workers}
    rows = 600
    with (
        make_api(**wiring.api_overrides()) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        response = c.post(
            "/api/v1/documents",
            files={"file": ("items.csv", csv_rows(rows, uuid.uuid4().hex[:6]), "text/csv")},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]

        def writing() -> dict[str, Any] | None:
            job: dict[str, Any] = c.get(f"/api/v1/jobs/{job_id}").json()
            assert job["status"] != "completed", "the job finished before it could be killed"
            return job if job.get("stage") == "writing" else None

        wait_for(writing, timeout=60, interval=0.05, what="the job writing")
        job = job_record(wiring, job_id)
        victim = by_pid[int(job["worker"].rsplit(":", 1)[1])]
        # Some batches are in Weaviate (a busy machine may take a while for the first).
        wait_for(
            lambda: weaviate_count(wiring.weaviate_url, wiring.collection) > 0,
            timeout=30,
            interval=0.05,
            what="a first batch in Weaviate",
        )
        os.kill(victim.pid, signal.SIGKILL)
        written_before = weaviate_count(wiring.weaviate_url, wiring.collection)
        assert 0 < written_before < rows, written_before
        killed_at = time.monotonic()
        done = wait_job(c, job_id, timeout=120)
        print(
            f"kill -9: {written_before} of {rows} rows were written; completed elsewhere in",
            end=" ",
        )
        print(f"{time.monotonic() - killed_at:.1f}s")
        assert done["status"] == "completed", done
        survivor = next(w for w in workers if w is not victim)
        assert job_record(wiring, job_id)["worker"].endswith(f":{survivor.pid}")
        assert (done["records"], done["written"]) == (rows, rows)
        document = c.get(f"/api/v1/documents/{done['document_id']}").json()
        assert document["records"] == rows
    # One object per distinct row text, one document entry: nothing twice.
    assert weaviate_count(wiring.weaviate_url, wiring.collection) == rows
    assert weaviate_count(wiring.weaviate_url, f"{wiring.collection}Documents") == 1


def test_sigterm_of_the_worker_mid_job_drains_or_hands_over(
    make_api: ApiFactory,
    rabbitmq: RabbitMQNode,
    wiring_for: Any,
    workers: list[Any],
    tmp_path: Path,
) -> None:
    """A rollout: the worker stops taking messages, finishes the job in hand within its grace
    period, or leaves it unacked for the next worker. Either way: done once."""
    wiring: QueueWiring = wiring_for(rabbitmq)
    slow = {"WEAVIATE_BATCH_SIZE": "5", "EMBED_BATCH_SIZE": "4", "QUEUE_PREFETCH": "1"}
    first = start_worker(wiring, tmp_path / "worker-0", **slow)
    workers.append(first)
    rows = 300
    with (
        make_api(**wiring.api_overrides()) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        response = c.post(
            "/api/v1/documents",
            files={"file": ("items.csv", csv_rows(rows, uuid.uuid4().hex[:6]), "text/csv")},
        )
        job_id = response.json()["job_id"]
        wait_for(
            lambda: c.get(f"/api/v1/jobs/{job_id}").json().get("stage") == "writing",
            timeout=60,
            interval=0.05,
            what="the job writing",
        )
        began = time.monotonic()
        first.stop()  # SIGTERM, then waits (up to 15 s) for the process to exit
        stopped_in = time.monotonic() - began
        workers.append(start_worker(wiring, tmp_path / "worker-1", **slow))
        done = wait_job(c, job_id, timeout=120)
        assert done["status"] == "completed", done
        print(f"SIGTERM: worker exited in {stopped_in:.1f}s; job run by", end=" ")
        print(job_record(wiring, job_id)["worker"])
    assert weaviate_count(wiring.weaviate_url, wiring.collection) == rows
    assert weaviate_count(wiring.weaviate_url, f"{wiring.collection}Documents") == 1


def test_workers_writing_the_same_texts_at_once_keep_every_reference(
    make_api: ApiFactory,
    rabbitmq: RabbitMQNode,
    wiring_for: Any,
    workers: list[Any],
    tmp_path: Path,
) -> None:
    """Documents sharing their texts, indexed at once by two workers: each text is stored
    once and references every document (read-merge-write across processes is serialised)."""
    wiring: QueueWiring = wiring_for(rabbitmq)
    for n in range(2):
        workers.append(
            start_worker(
                wiring, tmp_path / f"worker-{n}", QUEUE_PREFETCH="4", WEAVIATE_BATCH_SIZE="5"
            )
        )
    rows, documents = 40, 8
    content = csv_rows(rows, uuid.uuid4().hex[:6])
    with (
        make_api(**wiring.api_overrides()) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        jobs = []
        for n in range(documents):  # other names: other documents with the same texts
            response = c.post(
                "/api/v1/documents", files={"file": (f"copy-{n}.csv", content, "text/csv")}
            )
            assert response.status_code == 202, response.text
            jobs.append(response.json())
        done = [wait_job(c, j["job_id"], timeout=180) for j in jobs]
    assert [d["status"] for d in done] == ["completed"] * documents
    runners = {job_record(wiring, j["job_id"])["worker"] for j in jobs}
    assert len(runners) == 2, "one worker ran every job: nothing ran at once"
    objects = all_objects(wiring)
    assert len(objects) == rows == weaviate_count(wiring.weaviate_url, wiring.collection)
    expected = {j["document_id"] for j in jobs}
    missing = {o.text: len(expected - {r.document_id for r in o.refs}) for o in objects}
    assert sum(missing.values()) == 0, missing
    assert all(r.records == 1 for o in objects for r in o.refs)


def test_broker_restart_mid_stream_loses_nothing(
    make_api: ApiFactory,
    private_rabbitmq: RabbitMQNode,
    wiring_for: Any,
    workers: list[Any],
    tmp_path: Path,
) -> None:
    wiring: QueueWiring = wiring_for(private_rabbitmq)
    for n in range(2):
        workers.append(start_worker(wiring, tmp_path / f"worker-{n}"))
    documents = 24
    texts = [f"document {n} of the restart stream {uuid.uuid4().hex}" for n in range(documents)]
    jobs: list[str] = []
    refused = 0
    restart = threading.Thread(target=private_rabbitmq.restart)
    with (
        make_api(**wiring.api_overrides()) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        for n, text in enumerate(texts):
            if n == documents // 3:
                restart.start()  # the rest stream in while the broker goes down and up
            deadline = time.monotonic() + 90
            while True:  # a client honouring 503 + Retry-After (shortened here)
                response = upload(c, text)
                if response.status_code == 202:
                    jobs.append(response.json()["job_id"])
                    break
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"]
                refused += 1
                assert time.monotonic() < deadline, "the broker did not come back"
                time.sleep(0.3)
        restart.join(timeout=120)
        assert private_rabbitmq.amqp_port and len(private_rabbitmq.start_seconds) == 2
        finished = [wait_job(c, job_id, timeout=180) for job_id in jobs]
    assert [j["status"] for j in finished] == ["completed"] * documents
    print(f"restart: {refused} uploads refused (503) meanwhile, broker start", end=" ")
    print(f"{private_rabbitmq.start_seconds}")
    assert refused > 0, "no upload met the outage: the test proved nothing"
    assert weaviate_count(wiring.weaviate_url, wiring.collection) == documents
    assert weaviate_count(wiring.weaviate_url, f"{wiring.collection}Documents") == documents

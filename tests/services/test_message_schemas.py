"""Message schemas: the published JSON Schema files are current and accept what the models
encode; invalid bodies are refused with a one-line reason (what a dead letter carries);
retry decisions; the spooled payload round-trips."""

from __future__ import annotations

import json

import jsonschema
import pytest

from hack import messages as generator
from indexforge_services.common.tabular import Record
from indexforge_services.messaging import payloads
from indexforge_services.messaging.retry import after_failure, backoff
from indexforge_services.messaging.schemas import (
    DeletedPayload,
    DocumentDeleted,
    DocumentFailed,
    DocumentIndexed,
    FailedPayload,
    IndexedPayload,
    IngestRequested,
    IngestRequestedPayload,
    InvalidMessage,
    Message,
    encode,
    parse,
)

JOB = "0" * 31 + "1"
DOC = "6f1c3a52-7d59-5c3e-9a55-0e6a3b1f2c4d"

SAMPLES: list[Message] = [
    IngestRequested(
        correlation_id="c-1",
        payload=IngestRequestedPayload(
            job_id=JOB,
            document_id=DOC,
            kind="csv",
            source="a.csv",
            payload_key="api:ingest-payload:" + JOB,
            records=3,
            size=120,
        ),
    ),
    DocumentIndexed(
        payload=IndexedPayload(job_id=JOB, document_id=DOC, records=3, written=3, added=2)
    ),
    DocumentFailed(
        payload=FailedPayload(
            job_id=JOB, document_id=DOC, reason="ml_unavailable", error="down", attempts=5
        )
    ),
    DocumentDeleted(payload=DeletedPayload(document_id=DOC, records=3)),
]


def test_published_schema_files_are_current() -> None:
    assert generator.stale(generator.rendered()) == [], "run `python -m hack.messages`"


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.type)
def test_encoded_messages_match_their_published_schema(message: Message) -> None:
    body = encode(message)
    path = generator.OUT / f"{message.type}.v{message.version}.json"
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(body))
    assert parse(body) == message


BAD = [
    (b"not json", "invalid message"),
    (b"{}", "type"),
    (json.dumps({"type": "document.exploded", "payload": {}}).encode(), "type"),
    (
        json.dumps({**json.loads(encode(SAMPLES[0])), "version": 2}).encode(),
        "version",
    ),
    (
        json.dumps(
            {**json.loads(encode(SAMPLES[0])), "payload": {"job_id": "x", "document_id": DOC}}
        ).encode(),
        "payload",
    ),
    (json.dumps({**json.loads(encode(SAMPLES[3])), "extra": 1}).encode(), "extra"),
]


@pytest.mark.parametrize(("body", "named"), BAD)
def test_invalid_bodies_are_refused_with_a_reason(body: bytes, named: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse(body)
    assert named in caught.value.reason
    assert "\n" not in caught.value.reason and len(caught.value.reason) <= 500


def test_encode_refuses_a_message_built_without_validation() -> None:
    broken = DocumentDeleted.model_construct(
        payload=DeletedPayload.model_construct(document_id="nope", records=-1)
    )
    with pytest.raises(InvalidMessage):
        encode(broken)


@pytest.mark.parametrize(
    ("reason", "attempt", "action"),
    [
        ("ml_unavailable", 1, "retry"),
        ("weaviate_unavailable", 4, "retry"),
        ("weaviate_unavailable", 5, "dead_letter"),
        ("internal", 5, "dead_letter"),
        ("rejected", 1, "fail"),
        ("zip_bomb", 1, "fail"),
        ("payload_expired", 1, "fail"),
    ],
)
def test_after_failure(reason: str, attempt: int, action: str) -> None:
    decision = after_failure(reason, attempt, max_attempts=5, base=2.0, cap=300.0)
    assert decision.action == action


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, base=2.0, cap=10.0) for n in range(1, 6)] == [2, 4, 8, 10, 10]


def test_spooled_payload_round_trips() -> None:
    records = [Record(sheet="", row=i, fields={"n": i, "s": "é"}, text=f"t{i}") for i in (1, 2)]
    for workbook in (None, b"PK\x03\x04" + bytes(range(256))):
        p = payloads.Payload("csv", "a.csv", "d" * 64, 99, records, workbook)
        assert payloads.decode(payloads.encode(p)) == p


def test_the_operator_scales_and_alerts_on_the_queues_the_services_declare() -> None:
    from indexforge_operator import queues
    from indexforge_services.api.settings import ApiSettings
    from indexforge_services.messaging.topology import Names

    names = Names(queues.QUEUE_PREFIX)
    assert (names.ingest, names.dead) == (queues.INGEST_QUEUE, queues.DEAD_LETTER_QUEUE)
    assert ApiSettings.model_fields["queue_prefix"].default == queues.QUEUE_PREFIX

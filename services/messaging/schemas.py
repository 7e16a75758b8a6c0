"""The messages of event-driven ingestion, defined once: pydantic models -> JSON Schema files.

Every message is an envelope (`type`, `version`, `id`, `occurred_at`, `correlation_id`)
around a typed `payload`. `type` is also the routing key. A consumer parses with `parse`,
which names what is wrong in one line (the reason a dead-lettered message carries); a
publisher validates by building the model. Unknown fields are refused both ways, so a
producer and a consumer that disagree find out at the first message, not in production data.

Versioning: a breaking change of a payload is a new `version` (a new model beside the old
one, both accepted by consumers until no producer sends the old); adding an optional field
is not. The JSON Schema files in `schemas/messages/` are generated from these models
(`python -m hack.messages`), and a test fails when they are stale.

Large data never rides in a message: `document.ingest.requested` names the spooled upload
(`payload_key`, see `spool.py`), which the worker reads from the shared Redis.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

JOB_ID = r"^[0-9a-f]{32}$"
DocKind = Literal["text", "csv", "xlsx"]
DocumentId = Annotated[
    str, Field(pattern=r"^[0-9a-f-]{36}$", description="Content-derived document id (UUID).")
]
JobId = Annotated[str, Field(pattern=JOB_ID, description="Ingestion job id.")]


class _Strict(BaseModel):
    # The published schemas describe the wire form, where every field is present.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )


class _Envelope(_Strict):
    version: Literal[1] = Field(default=1, description="Schema version of this message type.")
    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Unique per message (not per delivery)."
    )
    occurred_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When the event happened."
    )
    correlation_id: str | None = Field(
        default=None, max_length=128, description="The upload request's correlation id."
    )


# -- payloads -------------------------------------------------------------------------------


class IngestRequestedPayload(_Strict):
    job_id: JobId
    document_id: DocumentId
    kind: DocKind
    source: str = Field(max_length=255, description="File name (base name) or text source.")
    payload_key: str = Field(
        max_length=200, description="Redis key of the spooled upload (records or workbook)."
    )
    records: int = Field(ge=0, description="Records prepared by the API (0 for workbooks).")
    size: int = Field(ge=0, description="Bytes uploaded.")


class IndexedPayload(_Strict):
    job_id: JobId
    document_id: DocumentId
    records: int = Field(ge=0)
    written: int = Field(ge=0, description="Records written.")
    added: int = Field(ge=0, description="Distinct texts stored for the first time.")


class FailedPayload(_Strict):
    job_id: JobId
    document_id: DocumentId
    reason: str = Field(max_length=64, description="Stable failure code.")
    error: str = Field(max_length=2000, description="What a client may read.")
    attempts: int = Field(ge=1, description="Deliveries spent on the job.")


class DeletedPayload(_Strict):
    document_id: DocumentId
    records: int = Field(ge=0, description="Records removed.")


# -- messages -------------------------------------------------------------------------------


class IngestRequested(_Envelope):
    """An upload was accepted: a worker is to index it."""

    type: Literal["document.ingest.requested"] = "document.ingest.requested"
    payload: IngestRequestedPayload


class DocumentIndexed(_Envelope):
    """A job completed: every record of the document is in Weaviate."""

    type: Literal["document.indexed"] = "document.indexed"
    payload: IndexedPayload


class DocumentFailed(_Envelope):
    """A job failed for good (refused input, or attempts exhausted); nothing of it is kept."""

    type: Literal["document.failed"] = "document.failed"
    payload: FailedPayload


class DocumentDeleted(_Envelope):
    """A document was deleted."""

    type: Literal["document.deleted"] = "document.deleted"
    payload: DeletedPayload


Message = IngestRequested | DocumentIndexed | DocumentFailed | DocumentDeleted
MESSAGE_TYPES: tuple[type[_Envelope], ...] = (
    IngestRequested,
    DocumentIndexed,
    DocumentFailed,
    DocumentDeleted,
)
_any_message: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Field(discriminator="type")])


class InvalidMessage(Exception):
    """A body that is not a valid message; `reason` is one line, safe for a header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)[:500]


def parse(body: bytes) -> Message:
    """The message in `body`; raises InvalidMessage saying why it is not one."""
    try:
        return _any_message.validate_json(body)
    except ValidationError as exc:
        raise InvalidMessage(f"invalid message: {_describe(exc)}") from exc


def encode(message: Message) -> bytes:
    """The wire form. Re-validated from its dump, so a model built with `model_construct`
    (which skips validation) cannot put an invalid message on the queue."""
    body = message.model_dump_json().encode()
    parse(body)
    return body


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema of every message type (`<type>.v<version>.json`)."""
    out: dict[str, dict[str, Any]] = {}
    for model in MESSAGE_TYPES:
        kind = model.model_fields["type"].default
        version = model.model_fields["version"].default
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://indexforge.io/schemas/messages/{kind}.v{version}.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[f"{kind}.v{version}.json"] = schema
    return out

"""`/api/v1/documents` (ingest, read, delete) and `/api/v1/jobs/{id}`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect

from ...common.correlation import current_correlation_id
from ...common.errors import ServiceError, code_for_status, describe_validation_errors, error_body
from ...common.identity import document_id as content_document_id
from ...messaging.publisher import QueueUnavailable
from .. import upload_slots
from ..cache_control import NoStore
from ..delimiters import InvalidDelimiter, parse_delimiter
from ..ingest import SEARCH_TAG
from ..jobs import new_job_id
from ..ranking import hit
from ..runtime import Api, count_consumer
from ..schemas import Deleted, DocumentOut, Job, JobAccepted, TextDocument, error_responses
from ..settings import MULTIPART_OVERHEAD_BYTES, ApiSettings
from ..spool import spool_multipart
from ..store import SearchFilters, StoreUnavailable
from ..uploads import Prepared, UploadRejected, prepare_file, sha256, text_records

DOCUMENTS_PATH = "/api/v1/documents"
SAMPLE_RECORDS = 20

log = logging.getLogger(__name__)
# Job status and documents change under the client's feet: never cached at the gateway.
router = APIRouter(
    prefix="/api/v1", tags=["documents"], dependencies=[Depends(count_consumer), NoStore]
)

_text_document = TypeAdapter(TextDocument)
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TextDocument.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": ".txt, .csv or .xlsx (type checked by content)",
                        },
                        "delimiter": {
                            "type": "string",
                            "enum": [",", ";", "\t", "|"],
                            "description": "CSV field separator; detected when absent.",
                        },
                    },
                    "required": ["file"],
                }
            },
        },
    }
}

DocumentId = Annotated[uuid.UUID, Path(description="Document id returned by the upload.")]
DelimiterQuery = Annotated[
    Literal[",", ";", "\t", "|"] | None,
    Query(
        description="CSV field separator (or the form field `delimiter`); detected from the "
        "first lines of the file when absent."
    ),
]
# A JSON document's text is at most 1,000,000 characters: its body never needs more.
JSON_MAX_BYTES = 8 * 1024 * 1024
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Job id from the upload.")]


# Weaviate refusing our key does not heal within a job's life: refuse uploads meanwhile.
RETRY_AFTER_SECONDS = "30"
# A broker restart takes seconds: clients come back soon.
QUEUE_RETRY_AFTER_SECONDS = "5"


def unavailable(exc: StoreUnavailable) -> ServiceError:
    """503 with a safe message and code; the detail (hosts, client errors) goes to the log."""
    log.warning("search backend unavailable: %s", exc)
    return ServiceError(503, exc.public, code=exc.code)


def _delimiter(query: str | None, form: str | None) -> str | None:
    """The client's CSV delimiter, from the query or the form (not both, differently)."""
    try:
        chosen = parse_delimiter(form)
    except InvalidDelimiter as exc:
        raise UploadRejected(422, str(exc)) from exc
    if query is not None and chosen is not None and query != chosen:
        raise UploadRejected(422, "the delimiter is given twice (query and form), differently")
    return query or chosen


def _prepare_json(body: bytes, settings: ApiSettings) -> Prepared:
    """A JSON text document as records (worker thread: decoding and chunking are CPU work)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"request body is not valid UTF-8 (byte {exc.start})"
        raise UploadRejected(400, message, reason="invalid_encoding") from exc
    try:
        doc = _text_document.validate_json(body)
    except ValidationError as exc:
        message, _ = describe_validation_errors(exc.errors(include_input=False))
        raise UploadRejected(422, message) from exc
    records = text_records(doc.text, settings)
    source = (doc.source or "text").strip()[:255] or "text"
    return Prepared("text", source, records, digest=sha256(doc.text.encode()), size=len(body))


async def _read_json(request: Request, api: Api) -> Prepared:
    limit = min(api.settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES, JSON_MAX_BYTES)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UploadRejected(413, f"body exceeds {limit} bytes", reason="too_large")
    return await asyncio.to_thread(_prepare_json, bytes(body), api.settings)


async def _read_multipart(request: Request, api: Api, delimiter: str | None) -> Prepared:
    """Spool the body to disk, then read the file from there in a worker thread."""
    settings = api.settings
    form = await spool_multipart(
        request.stream(),
        request.headers["content-type"],
        max_file_bytes=settings.max_upload_bytes,
        directory=settings.upload_tmp_dir,
    )
    try:
        if form.upload is None:
            raise UploadRejected(422, "the multipart body needs a file part named 'file'")
        chosen = _delimiter(delimiter, form.fields.get("delimiter"))
        spooled = form.upload
        prepared = await asyncio.to_thread(
            prepare_file,
            spooled.filename,
            spooled.file,
            size=spooled.size,
            digest=spooled.sha256,
            settings=settings,
            delimiter=chosen,
        )
    except BaseException:
        form.close()
        raise
    if prepared.workbook is None:
        form.close()  # read into records: the file is not needed any more
    return prepared


async def _receive(request: Request, api: Api, delimiter: str | None) -> Prepared:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        return await _read_multipart(request, api, delimiter)
    if content_type.startswith("application/json") or not content_type:
        return await _read_json(request, api)
    raise UploadRejected(415, "send application/json ({'text': ...}) or multipart/form-data (file)")


def _rejection(exc: UploadRejected) -> JSONResponse:
    body = error_body(exc.message, code=exc.reason or code_for_status(exc.status))
    return JSONResponse(body, status_code=exc.status)


def _too_many_uploads() -> JSONResponse:
    body = error_body("too many uploads in progress; retry shortly", code=upload_slots.CODE)
    headers = {"Retry-After": str(upload_slots.RETRY_AFTER_SECONDS)}
    return JSONResponse(body, status_code=429, headers=headers)


def check_workbook_size(prepared: Prepared, api: Api) -> None:
    """Refuse what the Excel processor would refuse, before it travels there."""
    if api.excel is None:
        raise UploadRejected(415, ".xlsx uploads are disabled (no Excel processor)")
    limit = api.settings.excel_max_upload_bytes
    size = prepared.size
    if limit is not None and size > limit:
        raise UploadRejected(413, f"the workbook has {size} bytes; the limit is {limit}")


@router.post(
    "/documents",
    status_code=202,
    summary="Ingest a document: JSON text, or a .txt/.csv/.xlsx file (multipart)",
    response_model=JobAccepted,
    responses=error_responses(400, 413, 415, 422, 429, 503),
    openapi_extra=_UPLOAD_BODY,
)
async def upload(
    request: Request, response: Response, api: Api, delimiter: DelimiterQuery = None
) -> JobAccepted | Response:
    # The slot is taken before a byte of the body is read (the body guard streams this path).
    if not api.uploads.try_acquire():
        return _too_many_uploads()
    try:
        prepared = await _receive(request, api, delimiter)
    except UploadRejected as exc:
        return _rejection(exc)
    except ClientDisconnect:
        log.info("the client went away during its upload")
        return Response(status_code=400)
    finally:
        api.uploads.release()
    try:
        return await _submit(prepared, response, api)
    except UploadRejected as exc:
        prepared.close()
        return _rejection(exc)
    except BaseException:
        prepared.close()  # the spooled workbook is not left to the garbage collector
        raise


async def _submit(prepared: Prepared, response: Response, api: Api) -> JobAccepted:
    if prepared.kind == "xlsx":
        check_workbook_size(prepared, api)
    if api.store.credentials_refused and not await api.store.ready():
        raise ServiceError(
            503,
            "search backend unavailable",
            code="search_unavailable",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    job_id = new_job_id()
    # The same file (type, name, bytes) is the same document: uploading it again is a no-op.
    document_id = content_document_id(
        api.settings.weaviate_collection,
        kind=prepared.kind,
        source=prepared.source,
        digest=prepared.digest,
    )
    job = await api.jobs.create(
        job_id, document_id=document_id, source=prepared.source, kind=prepared.kind,
        records=len(prepared.records), correlation_id=current_correlation_id(),
    )  # fmt: skip
    if api.queue is None:
        api.ingestor.submit(job, prepared)
    else:
        try:
            await api.queue.submit(job, prepared)
        except QueueUnavailable as exc:
            log.warning("upload refused: %s", exc)
            raise ServiceError(
                503,
                "the ingestion queue is unavailable; retry later",
                code="queue_unavailable",
                headers={"Retry-After": QUEUE_RETRY_AFTER_SECONDS},
            ) from exc
    api.metrics.upload_bytes.labels(prepared.kind).inc(prepared.size)
    status_url = f"/api/v1/jobs/{job_id}"
    response.headers["Location"] = status_url
    return JobAccepted(
        job_id=job_id, document_id=document_id, status="queued", status_url=status_url
    )


@router.get(
    "/jobs/{job_id}",
    summary="Status of an ingestion job (kept 24 h)",
    responses=error_responses(404, 422),
)
async def get_job(job_id: JobId, api: Api) -> Job:
    record = await api.jobs.get(job_id)
    if record is None:
        raise HTTPException(status_code=404, detail=f"no job {job_id} (unknown or expired)")
    return Job.model_validate(record)


@router.get(
    "/documents/{document_id}",
    summary="A stored document: source, kind, record count and its first records",
    responses=error_responses(404, 422, 503),
)
async def get_document(document_id: DocumentId, api: Api) -> DocumentOut:
    doc = str(document_id)
    try:
        entry = await api.store.document(doc)
        objects = (
            await api.store.objects_of_document(doc, limit=SAMPLE_RECORDS, with_vectors=False)
            if entry is not None
            else []
        )
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if entry is None:
        raise HTTPException(status_code=404, detail=f"no document {doc}")
    only = SearchFilters(document_id=doc)
    sample = [hit(o, only.matching(o.refs), None) for o in objects if only.matching(o.refs)]
    return DocumentOut.model_validate(
        {
            "id": doc,
            "source": entry.get("source"),
            "kind": entry.get("kind"),
            "records": int(entry.get("records") or 0),
            "sample": sample,
        }
    )


@router.delete(
    "/documents/{document_id}",
    summary="Delete a document: its records go; texts other documents also hold stay",
    responses=error_responses(404, 422, 503),
)
async def delete_document(document_id: DocumentId, api: Api) -> Deleted:
    doc = str(document_id)
    try:
        removed, found = await api.ingestor.remove(doc)
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    if not found:
        raise HTTPException(status_code=404, detail=f"no document {doc}")
    await api.ctx.cache.invalidate_tags(SEARCH_TAG)
    if api.queue is not None:
        await api.queue.deleted(doc, removed)
    return Deleted(id=doc, deleted=removed)

"""HTTP routes of the Excel processor under `/api/v1/excel`."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from ..common.errors import error_body
from .errors import ExcelRejected
from .schemas import ERROR_RESPONSES, LimitsResponse, ParseResponse
from .service import ExcelService

PARSE_PATH = "/api/v1/excel/parse"
router = APIRouter(prefix="/api/v1/excel", tags=["excel"])


def get_excel(request: Request) -> ExcelService:
    service = request.app.state.excel_service
    assert isinstance(service, ExcelService)
    return service


Excel = Annotated[ExcelService, Depends(get_excel)]


def rejection(exc: ExcelRejected) -> JSONResponse:
    # `code` like every service's errors; `reason` kept for clients that read it already.
    body = error_body(exc.message, code=exc.reason, reason=exc.reason)
    return JSONResponse(body, status_code=exc.status)


@router.post(
    "/parse",
    summary="Read an .xlsx workbook into sheet/row records",
    responses={200: {"model": ParseResponse}, **ERROR_RESPONSES},
)
async def parse(
    excel: Excel,
    file: Annotated[UploadFile, File(description="The .xlsx workbook (checked by content).")],
) -> Response:
    data = await file.read()
    try:
        result, cached = await excel.process(data)
    except ExcelRejected as exc:
        return rejection(exc)
    # Returned as-is: validating 100k records against the response model would cost more
    # than reading them. The model above documents the shape. Serialised in a worker thread:
    # tens of megabytes of JSON would stall health checks on the event loop.
    body: dict[str, Any] = {**result, "cached": cached}
    content = await asyncio.to_thread(_json_bytes, body)
    return Response(
        content,
        media_type="application/json",
        headers={"X-Cache": "hit" if cached else "miss"},
    )


def _json_bytes(body: dict[str, Any]) -> bytes:
    # What JSONResponse renders, without its copy on the event loop.
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@router.get("/limits", summary="The limits uploads are checked against")
async def limits(excel: Excel) -> LimitsResponse:
    s = excel.settings
    return LimitsResponse(
        max_upload_bytes=s.max_upload_bytes,
        max_rows=s.max_rows,
        max_columns=s.max_columns,
        max_sheets=s.max_sheets,
        max_cell_chars=s.max_cell_chars,
        max_uncompressed_bytes=s.max_uncompressed_bytes,
        max_compression_ratio=s.max_compression_ratio,
        max_output_chars=s.max_output_chars,
        max_output_ratio=s.max_output_ratio,
    )

"""HTTP routes of the Excel processor under `/api/v1/excel`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
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
    return JSONResponse(error_body(exc.message, reason=exc.reason), status_code=exc.status)


@router.post(
    "/parse",
    summary="Read an .xlsx workbook into sheet/row records",
    responses={200: {"model": ParseResponse}, **ERROR_RESPONSES},
)
async def parse(
    excel: Excel,
    file: Annotated[UploadFile, File(description="The .xlsx workbook (checked by content).")],
) -> JSONResponse:
    data = await file.read()
    try:
        result, cached = await excel.process(data)
    except ExcelRejected as exc:
        return rejection(exc)
    # Returned as-is: validating 100k records against the response model would cost more
    # than reading them. The model above documents the shape.
    body: dict[str, Any] = {**result, "cached": cached}
    return JSONResponse(body, headers={"X-Cache": "hit" if cached else "miss"})


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
    )

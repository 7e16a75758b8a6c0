"""The processor's one operation: bytes in, records out, cached by content hash.

Parsing runs in a worker thread (it is CPU-bound and would stall health checks otherwise),
at most `parse_concurrency` at a time so memory stays bounded. Results are cached for 30
minutes under the SHA-256 of the file plus a fingerprint of the limits: a re-upload of the
same workbook is answered from Redis, and changing a limit never serves an old verdict.
Rejections are not cached (they are cheap to recompute and may depend on a limit).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from ..common.app import ServiceContext
from ..common.tracing import tracer
from .errors import ExcelRejected
from .metrics import ExcelMetrics
from .settings import ExcelSettings
from .workbook import ReadLimits, parse_workbook


def limits_fingerprint(limits: ReadLimits) -> str:
    return hashlib.sha256(repr(limits).encode()).hexdigest()[:12]


class ExcelService:
    def __init__(self, settings: ExcelSettings, ctx: ServiceContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.limits = settings.read_limits()
        self.metrics = ExcelMetrics(ctx.registry)
        self._slots = asyncio.Semaphore(settings.parse_concurrency)
        self._tracer = tracer(ctx.tracer_provider, "indexforge.excel")
        self._fingerprint = limits_fingerprint(self.limits)

    def check_size(self, size: int) -> None:
        if size > self.settings.max_upload_bytes:
            self.metrics.rejected("too_large")
            raise ExcelRejected(
                413,
                "too_large",
                f"the file has {size} bytes; the limit is {self.settings.max_upload_bytes}",
            )

    async def process(self, data: bytes) -> tuple[dict[str, Any], bool]:
        """(result, served_from_cache). Raises ExcelRejected for input it will not read."""
        self.check_size(len(data))
        digest = hashlib.sha256(data).hexdigest()

        async def compute() -> dict[str, Any]:
            return await self._parse(data, digest)

        result, status = await self.ctx.cache.lookup(
            f"wb:{digest}:{self._fingerprint}",
            compute,
            ttl=self.settings.result_cache_ttl_seconds,
            cacheable=lambda r: int(r["row_count"]) <= self.settings.result_cache_max_rows,
        )
        return result, status != "miss"

    async def _parse(self, data: bytes, digest: str) -> dict[str, Any]:
        with self._tracer.start_as_current_span("excel.parse") as span:
            span.set_attribute("excel.bytes", len(data))
            async with self._slots:
                try:
                    parsed = await asyncio.to_thread(parse_workbook, data, self.limits)
                except ExcelRejected as exc:
                    self.metrics.rejected(exc.reason)
                    span.set_attribute("excel.rejected", exc.reason)
                    raise
            rows = len(parsed.records)
            span.set_attribute("excel.rows", rows)
            span.set_attribute("excel.sheets", len(parsed.sheets))
            self.metrics.parsed(rows, parsed.seconds)
            return {"sha256": digest, **parsed.as_dict()}

"""Liveness (`/healthz`) and readiness (`/readyz`) endpoints.

Liveness only says the event loop answers: restarting a pod never fixes a dead dependency.
Readiness runs the registered checks. A check marked `required=False` is reported but does
not make the pod unready: the cache Redis is optional because the cache falls back to
computing, and taking every pod out of the Service when Redis dies would turn a slowdown
into an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class _Registered:
    name: str
    check: Check
    required: bool


class HealthChecks:
    def __init__(self) -> None:
        self._checks: list[_Registered] = []

    def add(self, name: str, check: Check, *, required: bool = True) -> None:
        self._checks.append(_Registered(name, check, required))

    async def run(self) -> tuple[bool, dict[str, dict[str, object]]]:
        """Run all checks concurrently; (ready, per-check report)."""
        results = await asyncio.gather(*(_run_one(c.check) for c in self._checks))
        report: dict[str, dict[str, object]] = {}
        ready = True
        for reg, ok in zip(self._checks, results, strict=True):
            report[reg.name] = {"ok": ok, "required": reg.required}
            ready = ready and (ok or not reg.required)
        return ready, report


async def _run_one(check: Check) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception:  # a crashing or hanging check is a failing check
        return False


def health_router(checks: HealthChecks) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: required dependencies reachable, model loaded",
        responses={503: {"description": "Not ready"}},
    )
    async def readyz() -> JSONResponse:
        ready, report = await checks.run()
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": report},
            status_code=200 if ready else 503,
        )

    return router

"""Liveness (`/healthz`) and readiness (`/readyz`) endpoints.

Liveness only says the event loop answers: restarting a pod never fixes a dead dependency.
Readiness runs the registered checks. A check marked `required=False` is reported but does
not make the pod unready: the cache Redis is optional because the cache falls back to
computing, and taking every pod out of the Service when Redis dies would turn a slowdown
into an outage.

Readiness means "this pod can serve", not "every dependency is up". A check marked
`until_first_success` is required only until it first passes: a pod that never reached its
dependency (wrong credentials, an incompatible collection, a bad address) stays out of the
Service, so a broken rollout stalls with the old pods serving; a dependency that goes down
later is reported but keeps every pod in, and the affected routes answer 503 themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_SECONDS = 1.0


@dataclass
class _Registered:
    name: str
    check: Check
    required: bool
    until_first_success: bool = False
    passed_once: bool = False

    def required_now(self) -> bool:
        return self.required and not (self.until_first_success and self.passed_once)


class HealthChecks:
    def __init__(self) -> None:
        self._checks: list[_Registered] = []

    def add(
        self, name: str, check: Check, *, required: bool = True, until_first_success: bool = False
    ) -> None:
        self._checks.append(_Registered(name, check, required, until_first_success))

    def passed(self, name: str) -> None:
        """Record a success seen outside a probe (a start-up check) for `until_first_success`."""
        for reg in self._checks:
            if reg.name == name:
                reg.passed_once = True

    async def run(self) -> tuple[bool, dict[str, dict[str, object]]]:
        """Run all checks concurrently; (ready, per-check report)."""
        results = await asyncio.gather(*(_run_one(c.check) for c in self._checks))
        report: dict[str, dict[str, object]] = {}
        ready = True
        for reg, ok in zip(self._checks, results, strict=True):
            reg.passed_once = reg.passed_once or ok
            required = reg.required_now()
            report[reg.name] = {"ok": ok, "required": required}
            ready = ready and (ok or not required)
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

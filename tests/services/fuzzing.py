"""Schemathesis over a running service: every operation, no 5xx allowed."""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

# Per operation, so every endpoint is exercised however many routes a service has.
EXAMPLES_PER_OPERATION = 8


def fuzz_for_server_errors(base_url: str, mode: GenerationMode) -> Counter[tuple[str, str, int]]:
    """Fuzz each operation of ``base_url``'s OpenAPI spec; fail on any 5xx.

    Returns what was sent as (method, path, status class) counts, so callers can check the
    run really reached the routes that matter (a run that sends nothing proves nothing).
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    seen: Counter[tuple[str, str, int]] = Counter()
    fuzz = settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    for result in schema.get_all_operations():
        operation = result.ok()

        @fuzz
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, timeout=60)
            seen[(case.method, case.path, response.status_code // 100)] += 1
            assert response.status_code < 500, (case.method, case.path, response.text[:300])

        try:
            check()
        except Unsatisfiable:
            # No inputs to break (e.g. GET /healthz): there is no negative case to send.
            assert mode is GenerationMode.NEGATIVE, operation.label
    return seen

"""Keep the operator alive when a watched custom resource kind disappears.

The operator watches the kinds of optional integrations (prometheus-operator's
ServiceMonitor, PrometheusRule, AlertmanagerConfig) while their CRDs exist. When a CRD is
deleted, the API server ends the watch; kopf reconnects at once, and until discovery stops
listing the kind (kopf then cancels the watcher) the reconnect answers 404. kopf 1.45
treats that 404 as fatal for the whole operator ("multidimensional multitasker has
failed"), so uninstalling prometheus-operator would stop every reconcile.

`install()` wraps kopf's per-stream watch so a 404 (a request answered 404, or an ERROR
event with code 404) ends that stream quietly after a pause; kopf's own loop retries, and
its resource observer cancels the watcher once the kind is gone. Nothing else changes.
This reaches into kopf internals, so `install()` fails loudly on a kopf without them
(covered by tests/unit/test_kopf_compat.py) instead of silently doing nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import errors as kopf_errors
from kopf._cogs.clients import watching as kopf_watching

log = logging.getLogger("indexforge_operator")

# Between two attempts at a vanished kind: discovery drops it within seconds, and a pause
# keeps a kind that stays gone from costing more than one request per pause.
NOT_FOUND_PAUSE_SECONDS = 2.0
_MARK = "_indexforge_tolerates_404"

StreamFn = Callable[..., AsyncIterator[Any]]


def _is_not_found_event(raw: Any) -> bool:
    return (
        isinstance(raw, dict)
        and raw.get("type") == "ERROR"
        and isinstance(raw.get("object"), dict)
        and raw["object"].get("code") == 404
    )


def tolerate_not_found(stream: StreamFn, *, pause: float = NOT_FOUND_PAUSE_SECONDS) -> StreamFn:
    """`stream` (an async generator function of watch events), ending on 404 after `pause`."""

    async def tolerant(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        resource = kwargs.get("resource")
        try:
            async for raw in stream(*args, **kwargs):
                if _is_not_found_event(raw):
                    break
                yield raw
            else:
                return
        except kopf_errors.APINotFoundError:
            pass
        log.info("watch of %s answered 404 (its CRD is gone?); retrying in %.0fs",
                 resource, pause)  # fmt: skip
        await asyncio.sleep(pause)

    setattr(tolerant, _MARK, True)
    return tolerant


def install() -> None:
    """Patch kopf's watch functions once (idempotent)."""
    for name in ("continuous_watch", "watch_objs"):
        original = getattr(kopf_watching, name, None)
        if original is None:
            raise RuntimeError(f"kopf has no watching.{name}: re-check kopf_compat on upgrade")
        if not getattr(original, _MARK, False):
            setattr(kopf_watching, name, tolerate_not_found(original))
